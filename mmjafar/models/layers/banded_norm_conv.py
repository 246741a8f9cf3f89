"""Training-time ``conv(GroupNorm(x))`` for a stride-1 'same' convolution on CPU, in bands of rows.

Autograd through the two modules keeps the normalised map for the convolution's weight gradient, and its
backward holds that map, its gradient and the input's together. JAFAR's queries go through exactly this pair
(``norm`` then ``cross_decode.conv2d``, 3x3) at the output resolution, so at 448² that is several 98 MiB maps. The
function here saves only ``x`` and the per-group statistics; the forward normalises and convolves band by band
(each band with its ``k // 2`` halo rows), and the backward recomputes each band's normalised rows, takes the
convolution's input and weight gradients per band and finishes the GroupNorm backward in place: the only full-size
tensors it allocates are its output and the input gradient. Values and gradients equal the modules' up to float
rounding (tested with ``gradcheck`` in float64).
"""
import torch
import torch.nn.functional as F
from torch import nn

from . import fused_encoder
from .fused_norm_act import _coefficients_from_sums, _group_means, _token_view
from .fused_encoder import _StatsAccumulator

#: Rows of one band are chosen so that a band holds about this many elements.
BAND_ELEMENTS = 1 << 19


def _bands(height: int, row_elements: int):
    step = max(1, BAND_ELEMENTS // max(1, row_elements))
    return [(r, min(height, r + step)) for r in range(0, height, step)]


def _halo(x: torch.Tensor, r0: int, r1: int, pad: int) -> torch.Tensor:
    """Rows ``r0 - pad .. r1 + pad`` of ``x`` with zero rows outside the map (the convolution's padding)."""
    height = x.shape[2]
    lo, hi = max(0, r0 - pad), min(height, r1 + pad)
    return F.pad(x[:, :, lo:hi], (0, 0, pad - (r0 - lo), pad - (hi - r1)))


class _BandedNormConv(torch.autograd.Function):
    """``conv2d(group_norm(x), weight, bias, padding=k // 2)`` saving ``x`` and the statistics only."""

    @staticmethod
    def forward(ctx, x, gamma, beta, weight, bias, groups, eps):
        b, c, h, w = x.shape
        pad = weight.shape[-1] // 2
        acc = _StatsAccumulator(b, c, x.device)
        tokens = _token_view(x)
        for i in range(b):
            for r0, r1 in _bands(h, w * c):
                acc.add(i, tokens[i, r0 * w:r1 * w])
        ones = torch.ones(c, dtype=x.dtype, device=x.device)
        g = ones if gamma is None else gamma
        mean_c, rstd_c, scale, shift = _coefficients_from_sums(
            acc.result(), g, torch.zeros_like(ones) if beta is None else beta, groups, eps, h * w, x.dtype)
        scale4, shift4 = scale[:, :, None, None], shift[:, :, None, None]
        out = torch.empty(b, weight.shape[0], h, w, dtype=x.dtype, device=x.device, memory_format=torch.channels_last)
        for r0, r1 in _bands(h, w * max(c, weight.shape[0])):
            y = _halo(x, r0, r1, pad).mul(scale4).add_(shift4)
            if r0 - pad < 0:  # padding rows are zeros of the normalised map, not normalised zeros
                y[:, :, :pad - r0].zero_()
            if r1 + pad > h:
                y[:, :, y.shape[2] - (r1 + pad - h):].zero_()
            out[:, :, r0:r1] = F.conv2d(y, weight, bias, padding=(0, pad))
        ctx.save_for_backward(x, gamma, weight, bias, mean_c, rstd_c, scale, shift)
        ctx.groups, ctx.pad = groups, pad
        return out

    @staticmethod
    def backward(ctx, grad):
        x, gamma, weight, bias, mean_c, rstd_c, scale, shift = ctx.saved_tensors
        b, c, h, w = x.shape
        pad, groups = ctx.pad, ctx.groups
        scale4, shift4 = scale[:, :, None, None], shift[:, :, None, None]
        mean4, rstd4 = mean_c[:, :, None, None], rstd_c[:, :, None, None]
        flipped = weight.flip(2, 3).transpose(0, 1)  # the input gradient is a convolution with this
        grad_w = torch.zeros_like(weight)
        grad_bias = None if bias is None else grad.sum((0, 2, 3))
        grad_gamma = None if gamma is None else torch.zeros_like(gamma)
        grad_beta = None if gamma is None else torch.zeros_like(gamma)
        grad_x = torch.empty_like(x, memory_format=torch.channels_last)
        sum_g = torch.zeros(b, c, dtype=torch.float64, device=x.device)  # sums of dL/dx_hat
        sum_gx = torch.zeros(b, c, dtype=torch.float64, device=x.device)  # sums of dL/dx_hat * x_hat
        for r0, r1 in _bands(h, w * max(c, weight.shape[0])):
            y = _halo(x, r0, r1, pad).mul(scale4).add_(shift4)
            if r0 - pad < 0:
                y[:, :, :pad - r0].zero_()
            if r1 + pad > h:
                y[:, :, y.shape[2] - (r1 + pad - h):].zero_()
            g_rows = grad[:, :, r0:r1]
            grad_w += torch.ops.aten.convolution_backward(
                g_rows, y, weight, None, [1, 1], [0, pad], [1, 1], False, [0, 0], 1, [False, True, False])[1]
            gy = F.conv2d(_halo(grad, r0, r1, pad), flipped, padding=(0, pad))  # dL/dy of rows r0..r1
            xhat = (x[:, :, r0:r1] - mean4).mul_(rstd4)
            if gamma is not None:
                grad_gamma += (gy * xhat).sum((0, 2, 3))
                grad_beta += gy.sum((0, 2, 3))
                gy.mul_(gamma[:, None, None])
            sum_g += gy.sum((2, 3))
            sum_gx += (gy * xhat).sum((2, 3))
            grad_x[:, :, r0:r1] = gy
        m1, m2 = (t[:, :, None, None] for t in _group_means(sum_g, sum_gx, groups, h * w, x.dtype))
        for r0, r1 in _bands(h, w * c):  # dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat))
            xhat = (x[:, :, r0:r1] - mean4).mul_(rstd4)
            grad_x[:, :, r0:r1].sub_(m1).sub_(xhat.mul_(m2)).mul_(rstd4)
        return grad_x, grad_gamma, grad_beta, grad_w, grad_bias, None, None


def norm_conv_fusable(x: torch.Tensor, norm: nn.Module, conv: nn.Module) -> bool:
    """Whether :func:`norm_conv` applies: CPU float32/float64 without autocast, a GroupNorm and a stride-1
    convolution with an odd square kernel and zero 'same' padding, all in ``x``'s dtype."""
    return (fused_encoder.ENABLED and x.dim() == 4 and x.device.type == 'cpu'
            and x.dtype in (torch.float32, torch.float64) and not torch.is_autocast_enabled('cpu')
            and isinstance(norm, nn.GroupNorm) and isinstance(conv, nn.Conv2d) and conv.groups == 1
            and conv.stride == (1, 1) and conv.dilation == (1, 1) and conv.padding_mode == 'zeros'
            and conv.kernel_size[0] == conv.kernel_size[1] and conv.kernel_size[0] % 2 == 1
            and conv.padding == (conv.kernel_size[0] // 2, ) * 2 and conv.in_channels == x.shape[1]
            and all(p.dtype == x.dtype for p in (*norm.parameters(), *conv.parameters())))


def norm_conv(x: torch.Tensor, norm: nn.GroupNorm, conv: nn.Conv2d) -> torch.Tensor:
    """``conv(norm(x))`` with autograd by :class:`_BandedNormConv` (requires :func:`norm_conv_fusable`); returns a
    channels-last map."""
    return _BandedNormConv.apply(x, norm.weight, norm.bias, conv.weight, conv.bias, norm.num_groups, norm.eps)


__all__ = ['norm_conv', 'norm_conv_fusable']
