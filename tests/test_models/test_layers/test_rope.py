"""2-D RoPE: banded forward and the band-wise backward against plain autograd."""
import pytest
import torch

from mmjafar.models.layers import RoPE2d, apply_rope_2d, rope_angles, rope_rotate


def _reference(x: torch.Tensor, freqs: torch.Tensor) -> torch.Tensor:
    """Whole-map RoPE through plain autograd (the official formula)."""
    angle = rope_angles(freqs, x.shape[2], x.shape[3])
    return rope_rotate(x, angle.cos().to(x.dtype), angle.sin().to(x.dtype), dim=1)


@pytest.mark.parametrize('chunk_elements', [8 * 5, 8 * 5 * 3, 1 << 22])  # 1-row bands, 3-row bands, one band
def test_banded_rope_matches_whole_map_forward_and_backward(chunk_elements):
    torch.manual_seed(0)
    x = torch.randn(2, 8, 7, 5, dtype=torch.float64, requires_grad=True)
    freqs = (3 * torch.randn(2, 8, dtype=torch.float64)).requires_grad_()
    grad = torch.randn(2, 8, 7, 5, dtype=torch.float64)
    out = apply_rope_2d(x, freqs, chunk_elements=chunk_elements)
    gx, gf = torch.autograd.grad(out, (x, freqs), grad)
    ref = _reference(x, freqs)
    rx, rf = torch.autograd.grad(ref, (x, freqs), grad)
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-12)
    torch.testing.assert_close(gx, rx, rtol=0, atol=1e-12)
    torch.testing.assert_close(gf, rf, rtol=1e-10, atol=1e-10)


def test_banded_rope_gradcheck_and_single_input_grads():
    torch.manual_seed(1)
    x = torch.randn(1, 4, 5, 3, dtype=torch.float64, requires_grad=True)
    freqs = torch.randn(2, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: apply_rope_2d(a, b, chunk_elements=4 * 3 * 2), (x, freqs))
    # only the input needs a gradient (frozen RoPE), then only the frequencies
    (gx, ) = torch.autograd.grad(apply_rope_2d(x, freqs.detach(), chunk_elements=12).sum(), (x, ))
    (rx, ) = torch.autograd.grad(_reference(x, freqs.detach()).sum(), (x, ))
    torch.testing.assert_close(gx, rx)
    (gf, ) = torch.autograd.grad(apply_rope_2d(x.detach(), freqs, chunk_elements=12).sum(), (freqs, ))
    (rf, ) = torch.autograd.grad(_reference(x.detach(), freqs).sum(), (freqs, ))
    torch.testing.assert_close(gf, rf)


def test_rope_module_keeps_dtype_and_layout():
    rope = RoPE2d(8)
    x = torch.randn(1, 8, 6, 4).contiguous(memory_format=torch.channels_last).half()
    out = apply_rope_2d(x, rope.freqs, chunk_elements=8 * 4)
    assert out.dtype == torch.float16 and out.shape == x.shape
    torch.testing.assert_close(out.float(), _reference(x.float(), rope.freqs.detach()), atol=2e-3, rtol=2e-3)


@pytest.mark.parametrize('inplace', [False, True])
def test_channels_last_rope_in_its_layout(inplace):
    torch.manual_seed(2)
    x = torch.randn(2, 8, 7, 5, dtype=torch.float64).contiguous(memory_format=torch.channels_last)
    freqs = 3 * torch.randn(2, 8, dtype=torch.float64)
    ref = _reference(x, freqs)
    src = x.clone() if inplace else x
    out = apply_rope_2d(src, freqs, chunk_elements=8 * 5 * 3, inplace=inplace)
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-12)
    assert out.is_contiguous(memory_format=torch.channels_last)
    assert (out.data_ptr() == src.data_ptr()) == inplace
    if not inplace:
        torch.testing.assert_close(x, src)  # input untouched
