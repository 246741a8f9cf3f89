"""GroupNorm -> 'same' convolution as one banded training function: values and every gradient against the
modules (float64, bands with halos and a ragged last band), gradcheck, when it applies, and JAFAR's use of it."""
import pytest
import torch
from torch import nn

from mmjafar.models.layers import CrossAttentionBlock, banded_norm_conv
from mmjafar.models.layers.banded_norm_conv import _BandedNormConv, norm_conv, norm_conv_fusable


@pytest.mark.parametrize('affine', [False, True])
@pytest.mark.parametrize('kernel,bias', [(3, False), (1, True), (5, True)])
def test_norm_conv_matches_the_modules(affine, kernel, bias, monkeypatch):
    torch.manual_seed(0)
    monkeypatch.setattr(banded_norm_conv, 'BAND_ELEMENTS', 8 * 7 * 2)  # two rows per band, 9 rows
    norm = nn.GroupNorm(4, 8, affine=affine).double()
    if affine:
        norm.weight.data.normal_()
        norm.bias.data.normal_()
    conv = nn.Conv2d(8, 6, kernel, padding=kernel // 2, bias=bias).double()
    x = (2 * torch.randn(2, 8, 9, 7, dtype=torch.float64) + 1).contiguous(memory_format=torch.channels_last)
    x.requires_grad_()
    assert norm_conv_fusable(x, norm, conv)
    out, ref = norm_conv(x, norm, conv), conv(norm(x))
    assert out.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)
    grad = torch.randn_like(ref)
    params = [x, *norm.parameters(), *conv.parameters()]
    for got, want in zip(torch.autograd.grad(out, params, grad), torch.autograd.grad(ref, params, grad)):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-11)
    small = torch.randn(1, 8, 4, 3, dtype=torch.float64, requires_grad=True)
    weight = conv.weight.detach().clone().requires_grad_()
    assert torch.autograd.gradcheck(
        lambda t, w: _BandedNormConv.apply(t, norm.weight, norm.bias, w, conv.bias, 4, 1e-5), (small, weight))


def test_norm_conv_decisions():
    x = torch.randn(1, 8, 5, 5)
    norm = nn.GroupNorm(4, 8)
    assert norm_conv_fusable(x, norm, nn.Conv2d(8, 8, 3, padding=1))
    assert not norm_conv_fusable(x, norm, nn.Conv2d(8, 8, 3, padding=1, padding_mode='reflect'))
    assert not norm_conv_fusable(x, norm, nn.Conv2d(8, 8, 3, padding=0))
    assert not norm_conv_fusable(x, norm, nn.Conv2d(8, 8, 3, padding=1, stride=2))
    assert not norm_conv_fusable(x, nn.BatchNorm2d(8), nn.Conv2d(8, 8, 3, padding=1))
    assert not norm_conv_fusable(x.half(), norm.half(), nn.Conv2d(8, 8, 3, padding=1).half())


def test_cross_attention_block_uses_it_in_training_only(monkeypatch):
    """With ``query_norm`` the block equals ``conv2d(norm(q))`` attention; the banded function runs with autograd
    on the lean path only (not for the reference path, not without autograd)."""
    torch.manual_seed(1)
    calls = []
    monkeypatch.setattr('mmjafar.models.layers.attention.norm_conv',
                        lambda *a: calls.append(1) or norm_conv(*a))
    block = CrossAttentionBlock(8, 8, 6, 2).double()
    norm = nn.GroupNorm(4, 8, affine=False).double()
    q = torch.randn(1, 8, 6, 5, dtype=torch.float64, requires_grad=True)
    k, v = torch.randn(1, 8, 3, 3, dtype=torch.float64), torch.randn(1, 6, 3, 3, dtype=torch.float64)
    ref = block(norm(q), k, v)
    out = block(q, k, v, query_norm=norm)
    assert calls == [1]
    torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-12)
    grad = torch.randn_like(ref)
    params = [q, *(p for p in block.parameters() if p.requires_grad)]
    for got, want in zip(torch.autograd.grad(out, params, grad, allow_unused=True),
                         torch.autograd.grad(ref, params, grad, allow_unused=True)):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)
    with torch.no_grad():
        block(q, k, v, query_norm=norm)
    block.cross_attn.impl = 'reference'
    block(q, k, v, query_norm=norm)
    assert calls == [1]
