"""Training-time fused GroupNorm -> SiLU -> (1x1 conv | adaptive average pooling): values and every gradient
against autograd through the modules, in float64."""
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from mmjafar.models.layers import fused_norm_act
from mmjafar.models.layers.conv_blocks import encode_and_pool_many, make_encoder


def _norm(channels: int, groups: int) -> nn.GroupNorm:
    norm = nn.GroupNorm(groups, channels).double()
    norm.weight.data.normal_()
    norm.bias.data.normal_()
    return norm


def _check_grads(out, ref, params):
    grads = [torch.randn_like(r) for r in ref]
    got = torch.autograd.grad(out, params, grads)
    want = torch.autograd.grad(ref, params, grads)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=1e-10, atol=1e-12)
    for o, r in zip(out, ref):
        torch.testing.assert_close(o, r, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize('bias', [False, True])
def test_norm_act_conv_autograd(bias, monkeypatch):
    """``conv(silu(norm(x)))``: forward and gradients of x, the norm's and the conv's parameters; gradcheck."""
    torch.manual_seed(3)
    monkeypatch.setattr(fused_norm_act, 'CHUNK_ELEMENTS', 6 * 3)  # several chunks per image, ragged last one
    norm = _norm(6, 2)
    conv = nn.Conv2d(6, 5, 1, bias=bias).double()
    x = (2 * torch.randn(2, 6, 5, 4, dtype=torch.float64) + 1).contiguous(memory_format=torch.channels_last)
    x.requires_grad_()
    assert fused_norm_act.norm_act_conv_fusable(x, norm, conv)
    out = fused_norm_act.norm_act_conv(x, norm, conv)
    _check_grads([out], [conv(F.silu(norm(x)))], [x, *norm.parameters(), *conv.parameters()])
    small = torch.randn(1, 6, 3, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda t, g, b: fused_norm_act._NormActConv.apply(t, g, b, conv.weight, conv.bias, 2, 1e-5),
        (small, norm.weight.detach().clone().requires_grad_(), norm.bias.detach().clone().requires_grad_()))


@pytest.mark.parametrize('sizes', [[(3, 2)], [(4, 5), (2, 3)], [(5, 9), (1, 1)]])
def test_norm_act_pool_autograd(sizes, monkeypatch):
    """``adaptive_avg_pool2d(silu(norm(x)), size)`` for one or several sizes, windows that divide the input and
    overlapping ones (7 -> 4 or 5 rows, 9 -> 5 columns): forward and gradients equal autograd's; gradcheck."""
    torch.manual_seed(4)
    monkeypatch.setattr(fused_norm_act, 'CHUNK_ELEMENTS', 8 * 9 * 2)  # bands of two rows, ragged last band
    norm = _norm(8, 4)
    x = (2 * torch.randn(2, 8, 7, 9, dtype=torch.float64) + 1).contiguous(memory_format=torch.channels_last)
    x.requires_grad_()
    assert fused_norm_act.norm_act_pool_fusable(x, norm, sizes)
    out = fused_norm_act.norm_act_pool(x, norm, sizes)
    ref = [F.adaptive_avg_pool2d(F.silu(norm(x)), s) for s in sizes]
    _check_grads(out, ref, [x, *norm.parameters()])
    small = torch.randn(1, 8, 5, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda t, g, b: fused_norm_act._NormActPool.apply(t, g, b, 4, 1e-5, ((2, 2), (3, 1))),
        (small, norm.weight.detach().clone().requires_grad_(), norm.bias.detach().clone().requires_grad_()))


def test_norm_act_pool_decisions():
    """Not used for the input's own size (pooling is the identity there), half precision or a LayerNorm-like
    GroupNorm without affine parameters; ``pool_matrix`` has adaptive pooling's windows."""
    x = torch.randn(1, 8, 6, 6, dtype=torch.float64)
    norm = _norm(8, 4)
    assert not fused_norm_act.norm_act_pool_fusable(x, norm, [(3, 3), (6, 6)])
    assert not fused_norm_act.norm_act_pool_fusable(x.half(), nn.GroupNorm(4, 8).half(), [(3, 3)])
    assert not fused_norm_act.norm_act_pool_fusable(x, nn.GroupNorm(4, 8, affine=False).double(), [(3, 3)])
    v = torch.arange(7.0, dtype=torch.float64)
    torch.testing.assert_close(fused_norm_act.pool_matrix(7, 3, torch.float64) @ v,
                               F.adaptive_avg_pool1d(v.view(1, 1, 7), 3).view(3))


def test_encode_and_pool_many_trains_through_the_fused_pool():
    """JAFAR's key branch in training (encoder ending in a 1x1 ResBlock, pooled to the feature grid): the fused
    path gives the layer-by-layer values and gradients."""
    torch.manual_seed(5)
    enc = make_encoder(4, 16, num_blocks=2, num_groups=4).double()
    for m in enc.modules():
        if isinstance(m, nn.GroupNorm):
            m.weight.data.normal_()
            m.bias.data.normal_()
    x = torch.randn(1, 4, 12, 10, dtype=torch.float64, requires_grad=True)
    sizes = [(3, 5), (4, 4)]
    out = encode_and_pool_many(enc, x, sizes, low_memory=True)
    ref = [F.adaptive_avg_pool2d(enc(x), s) for s in sizes]
    _check_grads(out, ref, [x, *enc.parameters()])
