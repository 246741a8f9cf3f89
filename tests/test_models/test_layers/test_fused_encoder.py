"""Fused pointwise encoders (CPU inference) against the layer-by-layer path."""
import pytest
import torch
from torch import nn

from mmjafar.models.layers import fused_encoder
from mmjafar.models.layers.conv_blocks import ResBlock, encode_and_pool_many, make_encoder, run_layers


def _randomise_norms(module: nn.Module) -> nn.Module:
    for m in module.modules():
        if isinstance(m, nn.GroupNorm) and m.affine:
            m.weight.data.normal_()
            m.bias.data.normal_()
    return module


def _reference(fn, *args):
    fused_encoder.ENABLED = False
    try:
        return fn(*args)
    finally:
        fused_encoder.ENABLED = True


@pytest.mark.parametrize('kwargs', [dict(), dict(bias=True, residual=False), dict(layout='sequential')])
@pytest.mark.parametrize('chunk_elements', [32 * 7, None])  # many chunks (with a ragged last one), one chunk
def test_fused_encoder_equals_layer_by_layer(kwargs, chunk_elements, monkeypatch):
    torch.manual_seed(0)
    if chunk_elements is not None:
        monkeypatch.setattr(fused_encoder, 'CHUNK_ELEMENTS', chunk_elements)
    enc = _randomise_norms(make_encoder(5, 32, **kwargs)).double().eval()
    x = (3 * torch.randn(2, 5, 13, 11, dtype=torch.float64) + 1).contiguous(memory_format=torch.channels_last)
    sizes = [(4, 3), (13, 11)]
    with torch.no_grad():
        assert fused_encoder.fusable(list(enc), x)
        out, pooled = run_layers(enc, x), encode_and_pool_many(enc, x, sizes)
        ref, ref_pooled = _reference(run_layers, enc, x), _reference(encode_and_pool_many, enc, x, sizes)
    assert out.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)
    for p, r in zip(pooled, ref_pooled):
        torch.testing.assert_close(p, r, rtol=1e-12, atol=1e-12)


def test_fused_float32_shortcut_and_plain_input():
    torch.manual_seed(1)
    block = _randomise_norms(ResBlock(6, 10, num_groups=2)).eval()  # 1x1 shortcut projection
    layers = [nn.Conv2d(3, 6, 1), block]
    x = torch.randn(1, 3, 9, 7)  # NCHW input: copied to channels-last once
    with torch.no_grad():
        out = run_layers(layers, x)
        ref = _reference(run_layers, layers, x)
        alone = run_layers([block], layers[0](x))  # a block first: statistics pass over the input
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(alone, ref, rtol=1e-5, atol=1e-5)


def test_not_fused_with_grad_autocast_or_other_kernels():
    enc = make_encoder(3, 16, num_groups=4)
    x = torch.randn(1, 3, 8, 8)
    assert not fused_encoder.fusable(list(enc), x)  # parameters require grad
    with torch.no_grad():
        assert fused_encoder.fusable(list(enc), x)
        with torch.autocast('cpu', dtype=torch.bfloat16):
            assert not fused_encoder.fusable(list(enc), x)
        assert not fused_encoder.fusable(list(make_encoder(3, 16, kernel_size=3, num_groups=4)), x)
        assert not fused_encoder.fusable(list(make_encoder(3, 16, block_kernel_size=3, num_groups=4)), x)
        assert not fused_encoder.fusable(list(enc.half()), x.half())
