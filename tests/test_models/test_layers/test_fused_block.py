"""A whole pointwise ResBlock as one training-time autograd function: values and every gradient against autograd
through the modules (float64), gradcheck, and when it applies."""
import pytest
import torch
from torch import nn

from mmjafar.models.layers import conv_blocks, fused_norm_act
from mmjafar.models.layers.conv_blocks import ResBlock, encode_and_pool_many, make_encoder, run_layers
from mmjafar.models.layers.fused_block import (_PointwiseBlock, _PointwisePoolBlock, pointwise_block,
                                               pointwise_block_fusable, pointwise_pool_block)


def _randomise_norms(module: nn.Module) -> nn.Module:
    for m in module.modules():
        if isinstance(m, nn.GroupNorm):
            m.weight.data.normal_()
            m.bias.data.normal_()
    return module


@pytest.mark.parametrize('bias', [False, True])
def test_pointwise_block_autograd(bias, monkeypatch):
    torch.manual_seed(6)
    monkeypatch.setattr(fused_norm_act, 'CHUNK_ELEMENTS', 8 * 7)  # several chunks per image, ragged last one
    block = _randomise_norms(ResBlock(8, 8, num_groups=4, bias=bias)).double()
    x = (2 * torch.randn(2, 8, 5, 7, dtype=torch.float64) + 1).contiguous(memory_format=torch.channels_last)
    x.requires_grad_()
    assert pointwise_block_fusable(x, block)
    out, ref = pointwise_block(x, block), block(x)
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)
    grad = torch.randn_like(ref)
    params = [x, *block.parameters()]
    for got, want in zip(torch.autograd.grad(out, params, grad), torch.autograd.grad(ref, params, grad)):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)
    small = torch.randn(1, 8, 3, 2, dtype=torch.float64, requires_grad=True)
    picked = (block.norm1.weight, block.conv1.weight, block.norm2.bias, block.conv2.weight)
    leaves = [p.detach().clone().requires_grad_() for p in picked]
    assert torch.autograd.gradcheck(
        lambda t, g1, w1, b2, w2: _PointwiseBlock.apply(t, None, None, g1, block.norm1.bias, w1, block.conv1.bias,
                                                        block.norm2.weight, b2, w2, block.conv2.bias, 4, 1e-5, 1e-5),
        (small, *leaves))


def test_pointwise_block_decisions_and_encoder():
    """Not for blocks with a shortcut projection, non-residual blocks, 3x3 convolutions or half precision; a
    training encoder (run_layers with low_memory) through it equals the modules, gradients included."""
    x = torch.randn(1, 8, 4, 4, dtype=torch.float64)
    assert not pointwise_block_fusable(x, ResBlock(8, 16, num_groups=4).double())  # shortcut
    assert not pointwise_block_fusable(x, ResBlock(8, 8, num_groups=4, residual=False).double())
    assert not pointwise_block_fusable(x, ResBlock(8, 8, kernel_size=3, num_groups=4).double())
    assert not pointwise_block_fusable(x.half(), ResBlock(8, 8, num_groups=4).half())
    assert not pointwise_block_fusable(x, nn.Conv2d(8, 8, 1).double())
    torch.manual_seed(7)
    enc = _randomise_norms(make_encoder(3, 8, num_blocks=2, num_groups=4)).double()
    image = torch.randn(1, 3, 6, 5, dtype=torch.float64, requires_grad=True)
    out, ref = run_layers(enc, image, low_memory=True), enc(image)
    params = [image, *enc.parameters()]
    grad = torch.randn_like(ref)
    for got, want in zip(torch.autograd.grad(out, params, grad), torch.autograd.grad(ref, params, grad)):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize('bias', [False, True])
@pytest.mark.parametrize('sizes', [((3, 2), ), ((2, 3), (4, 4), (1, 1))])
def test_pointwise_pool_block_autograd(bias, sizes, monkeypatch):
    """Pooled outputs and every gradient equal pooling the module's output (several sizes, bands of rows with a
    ragged last one), and gradcheck holds."""
    torch.manual_seed(8)
    monkeypatch.setattr(fused_norm_act, 'CHUNK_ELEMENTS', 8 * 7 * 2)  # two image rows per band, 5 rows
    block = _randomise_norms(ResBlock(8, 8, num_groups=4, bias=bias)).double()
    x = (2 * torch.randn(2, 8, 5, 7, dtype=torch.float64) + 1).contiguous(memory_format=torch.channels_last)
    x.requires_grad_()
    outs = pointwise_pool_block(x, block, sizes)
    refs = [torch.nn.functional.adaptive_avg_pool2d(block(x), s) for s in sizes]
    for out, ref in zip(outs, refs):
        torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)
    grads = [torch.randn_like(r) for r in refs]
    params = [x, *block.parameters()]
    got = torch.autograd.grad(outs, params, grads)
    want = torch.autograd.grad(refs, params, grads)
    for g, r in zip(got, want):
        torch.testing.assert_close(g, r, rtol=1e-10, atol=1e-12)
    small = torch.randn(1, 8, 4, 3, dtype=torch.float64, requires_grad=True)
    picked = (block.norm1.weight, block.conv1.weight, block.norm2.bias, block.conv2.weight)
    leaves = [p.detach().clone().requires_grad_() for p in picked]
    assert torch.autograd.gradcheck(
        lambda t, g1, w1, b2, w2: _PointwisePoolBlock.apply(
            t, None, None, g1, block.norm1.bias, w1, block.conv1.bias, block.norm2.weight, b2, w2, block.conv2.bias,
            4, 1e-5, 1e-5, ((2, 2), (1, 3))),
        (small, *leaves))


def test_encode_and_pool_many_trains_through_the_pooled_block(monkeypatch):
    """A training encoder pooled to several grids (JAFAR's key branch) goes through the pooled block and equals
    pooling the modules' output, gradients included; a size equal to the input's falls back to the full path."""
    torch.manual_seed(9)
    calls = []
    monkeypatch.setattr(conv_blocks, 'pointwise_pool_block', lambda *a: calls.append(1) or pointwise_pool_block(*a))
    enc = _randomise_norms(make_encoder(8, 8, num_blocks=2, num_groups=4)).double()
    x = torch.randn(1, 8, 9, 6, dtype=torch.float64).contiguous(memory_format=torch.channels_last)
    x.requires_grad_()
    for sizes, fused in ((((3, 3), (2, 4)), True), (((3, 3), (9, 6)), False)):
        calls.clear()
        outs = encode_and_pool_many(enc, x, sizes, low_memory=True)
        assert bool(calls) is fused
        refs = [torch.nn.functional.adaptive_avg_pool2d(enc(x), s) for s in sizes]
        grads = [torch.randn_like(r) for r in refs]
        params = [x, *enc.parameters()]
        for got, want in zip(torch.autograd.grad(outs, params, grads), torch.autograd.grad(refs, params, grads)):
            torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize('in_channels,bias', [(3, False), (8, True)])
@pytest.mark.parametrize('pooled', [False, True])
def test_block_with_stem(in_channels, bias, pooled, monkeypatch):
    """A 1x1 stem convolution folded into the block (its output recomputed per chunk, never stored): values and
    every gradient, the stem's included, equal the modules'; gradcheck with the stem's weight."""
    torch.manual_seed(10)
    monkeypatch.setattr(fused_norm_act, 'CHUNK_ELEMENTS', 8 * 7 * 2)
    stem = nn.Conv2d(in_channels, 8, 1, bias=bias).double()
    block = _randomise_norms(ResBlock(8, 8, num_groups=4, bias=bias)).double()
    x = torch.randn(2, in_channels, 5, 7, dtype=torch.float64).contiguous(memory_format=torch.channels_last)
    x.requires_grad_()
    assert pointwise_block_fusable(x, block, stem=stem)
    assert not pointwise_block_fusable(x, block, stem=nn.Conv2d(in_channels, 8, 3, padding=1).double())
    sizes = ((2, 3), (5, 1))
    if pooled:
        outs = pointwise_pool_block(x, block, sizes, stem=stem)
        refs = [torch.nn.functional.adaptive_avg_pool2d(block(stem(x)), s) for s in sizes]
    else:
        outs, refs = [pointwise_block(x, block, stem=stem)], [block(stem(x))]
    for out, ref in zip(outs, refs):
        torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)
    grads = [torch.randn_like(r) for r in refs]
    params = [x, *stem.parameters(), *block.parameters()]
    for got, want in zip(torch.autograd.grad(outs, params, grads), torch.autograd.grad(refs, params, grads)):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)
    small = torch.randn(1, in_channels, 4, 3, dtype=torch.float64, requires_grad=True)
    sw = stem.weight.detach().clone().requires_grad_()
    fn = _PointwisePoolBlock if pooled else _PointwiseBlock
    extra = (((2, 2), ), ) if pooled else ()
    assert torch.autograd.gradcheck(
        lambda t, w: fn.apply(t, w, stem.bias, block.norm1.weight, block.norm1.bias, block.conv1.weight,
                              block.conv1.bias, block.norm2.weight, block.norm2.bias, block.conv2.weight,
                              block.conv2.bias, 4, 1e-5, 1e-5, *extra),
        (small, sw))


def test_run_layers_folds_the_stem(monkeypatch):
    """A training encoder's first 1x1 convolution goes into its first block's function (``stem=``)."""
    seen = []
    monkeypatch.setattr(conv_blocks, 'pointwise_block',
                        lambda x, block, stem=None: seen.append(stem) or pointwise_block(x, block, stem=stem))
    enc = make_encoder(3, 8, num_blocks=2, num_groups=4).double()
    image = torch.randn(1, 3, 6, 5, dtype=torch.float64, requires_grad=True)
    out = run_layers(enc, image, low_memory=True)
    assert seen == [enc[0], None]
    torch.testing.assert_close(out, enc(image), rtol=1e-12, atol=1e-12)
