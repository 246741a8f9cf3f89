"""2-D rotary position embedding with learnable frequencies, as in JAFAR and AnyUp."""
import math

import torch
from torch import nn


def rope_angles(freqs: torch.Tensor, height: int, width: int, rows: slice = slice(None)) -> torch.Tensor:
    """Angles ``(C, H, W)`` of a ``[0, 1] x [0, 1]`` coordinate grid (row first): ``r * freqs[0] + c * freqs[1]``.

    ``rows`` selects a band of rows (the values are those of the full grid).

    Computed in float32 at least (the official code's coordinates are float32; this also keeps fp16 models
    accurate), on ``freqs``' device.
    """
    dtype = torch.promote_types(freqs.dtype, torch.float32)
    f = freqs.to(dtype)
    r = torch.linspace(0, 1, height, device=freqs.device, dtype=dtype)[rows]
    cols = torch.linspace(0, 1, width, device=freqs.device, dtype=dtype)
    return r[None, :, None] * f[0, :, None, None] + cols[None, None, :] * f[1, :, None, None]


def apply_rope_2d(x: torch.Tensor, freqs: torch.Tensor, chunk_elements: int = 1 << 22,
                  inplace: bool = False) -> torch.Tensor:
    """Rotate ``x`` ``(B, C, H, W)`` by the angles of its own grid.

    ``out = x * cos(a) + rotate_half(x) * sin(a)`` with ``rotate_half(x) = cat(-x[C/2:], x[:C/2])``: channel c
    pairs with c + C/2 and each member of a pair uses its own angle (the official formula, not a pure
    rotation when the learnt frequencies of a pair differ). Rows are processed in bands of about
    ``chunk_elements`` angle values written into one output, so no full-size angle, cosine or sine map is ever
    held, and the backward pass (:class:`_BandedRoPE`) recomputes the angles band by band and writes the input
    gradient in place, instead of autograd's one full-size zero-padded gradient per band.

    A channels-last ``x`` is rotated in its own layout (bands of ``(rows, W, C)`` angles, no layout mixing).
    ``inplace`` (honoured without autograd only): overwrite ``x`` instead of allocating the output, for callers
    that own ``x`` (the lean JAFAR path rotates the image encoder's fresh output).
    """
    rows_per_chunk = max(1, chunk_elements // max(1, x.shape[1] * x.shape[-1]))
    if not (torch.is_grad_enabled() and (x.requires_grad or freqs.requires_grad)):
        return _banded_rope_forward(x, freqs, rows_per_chunk, inplace)
    return _BandedRoPE.apply(x, freqs, rows_per_chunk)


def _bands(height: int, rows_per_chunk: int):
    return ((r, min(height, r + rows_per_chunk)) for r in range(0, height, rows_per_chunk))


def _rope_channels_last(x: torch.Tensor, freqs: torch.Tensor, rows_per_chunk: int, inplace: bool) -> torch.Tensor:
    """RoPE of a channels-last ``x`` in its ``(B, H, W, C)`` token layout, band by band (see :func:`apply_rope_2d`)."""
    height, width, channels = x.shape[2], x.shape[3], x.shape[1]
    half = channels // 2
    out = x if inplace else torch.empty_like(x, memory_format=torch.channels_last)
    src, dst = x.permute(0, 2, 3, 1), out.permute(0, 2, 3, 1)  # (B, H, W, C) views
    dtype = torch.promote_types(freqs.dtype, torch.float32)
    f = freqs.to(dtype)
    rows = torch.linspace(0, 1, height, device=freqs.device, dtype=dtype)
    cols = torch.linspace(0, 1, width, device=freqs.device, dtype=dtype)
    col_part = cols[:, None] * f[1]  # (W, C)
    tmp = None
    for r0, r1 in _bands(height, rows_per_chunk):
        angle = rows[r0:r1, None, None] * f[0] + col_part  # (rows, W, C): same products and sum as rope_angles
        cos, sin = angle.cos().to(x.dtype), angle.sin_().to(x.dtype)
        xb, ob = src[:, r0:r1], dst[:, r0:r1]
        x1, x2 = xb[..., :half], xb[..., half:]
        if inplace:  # first half kept aside: the second half's update still reads the original x1
            tmp = torch.mul(x1, cos[..., :half], out=tmp if tmp is not None and tmp.shape == x1.shape else None)
            tmp.addcmul_(x2, sin[..., :half], value=-1)
            x2.mul_(cos[..., half:]).addcmul_(x1, sin[..., half:])
            x1.copy_(tmp)
        else:
            o1, o2 = ob[..., :half], ob[..., half:]
            torch.mul(x1, cos[..., :half], out=o1).addcmul_(x2, sin[..., :half], value=-1)
            torch.mul(x2, cos[..., half:], out=o2).addcmul_(x1, sin[..., half:])
    return out


def _banded_rope_forward(x: torch.Tensor, freqs: torch.Tensor, rows_per_chunk: int,
                         inplace: bool = False) -> torch.Tensor:
    if x.dim() == 4 and x.shape[1] % 2 == 0 and x.is_contiguous(memory_format=torch.channels_last) \
            and not x.is_contiguous():
        return _rope_channels_last(x, freqs, rows_per_chunk, inplace)
    height = x.shape[2]
    if rows_per_chunk >= height:
        return _rope_rows(x, freqs, 0, height)
    out = torch.empty_like(x)
    for r0, r1 in _bands(height, rows_per_chunk):
        out[:, :, r0:r1] = _rope_rows(x[:, :, r0:r1], freqs, r0, height)
    return out


class _BandedRoPE(torch.autograd.Function):
    """RoPE with a band-wise backward: ``dx = g cos + rotate_half^T(g sin)`` and, for the learnt frequencies,
    ``d freqs[0] = sum r * dA``, ``d freqs[1] = sum c * dA`` with ``dA = g (rotate_half(x) cos - x sin)``."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, freqs: torch.Tensor, rows_per_chunk: int) -> torch.Tensor:
        ctx.save_for_backward(x, freqs)
        ctx.rows_per_chunk = rows_per_chunk
        return _banded_rope_forward(x, freqs, rows_per_chunk)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        x, freqs = ctx.saved_tensors
        height, width = x.shape[-2:]
        need_x, need_f = ctx.needs_input_grad[:2]
        grad_x = torch.empty_like(x) if need_x else None
        dtype = torch.promote_types(freqs.dtype, torch.float32)
        grad_f = torch.zeros(freqs.shape, device=freqs.device, dtype=dtype) if need_f else None
        rows = torch.linspace(0, 1, height, device=freqs.device, dtype=dtype)
        cols = torch.linspace(0, 1, width, device=freqs.device, dtype=dtype)
        # bands a quarter of the forward's: about eight band-size temporaries live next to the full-size maps
        for r0, r1 in _bands(height, max(1, ctx.rows_per_chunk // 4)):
            angle = rope_angles(freqs, height, width, slice(r0, r1))
            cos, sin = angle.cos().to(x.dtype), angle.sin().to(x.dtype)
            g = grad[:, :, r0:r1]
            if need_x:
                g1, g2 = (g * sin).chunk(2, dim=1)
                grad_x[:, :, r0:r1] = g * cos + torch.cat((g2, -g1), dim=1)
            if need_f:
                xb = x[:, :, r0:r1]
                x1, x2 = xb.chunk(2, dim=1)
                d_angle = (g * (torch.cat((-x2, x1), dim=1) * cos - xb * sin)).sum(0).to(dtype)  # (C, rows, W)
                grad_f[0] += (d_angle.sum(2) * rows[r0:r1]).sum(1)
                grad_f[1] += (d_angle.sum(1) * cols).sum(1)
        return grad_x, None if grad_f is None else grad_f.to(freqs.dtype), None


def _rope_rows(x: torch.Tensor, freqs: torch.Tensor, row0: int, height: int) -> torch.Tensor:
    """RoPE of rows ``row0 .. row0 + x.shape[2]`` of a ``height``-row map."""
    angle = rope_angles(freqs, height, x.shape[-1], slice(row0, row0 + x.shape[2]))
    return rope_rotate(x, angle.cos().to(x.dtype), angle.sin().to(x.dtype), dim=1)


def rope_rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """``x * cos + rotate_half(x) * sin`` along ``dim``, with ``rotate_half(x) = cat(-x[D/2:], x[:D/2])``.

    Channel ``c`` pairs with ``c + D/2`` (``D = x.shape[dim]``); ``cos`` and ``sin`` broadcast against ``x``.
    Shared by JAFAR/AnyUp's RoPE and NAF's per-head axial RoPE (:mod:`.axial_rope`).
    """
    x1, x2 = x.chunk(2, dim=dim)
    return x * cos + torch.cat((-x2, x1), dim=dim) * sin


class RoPE2d(nn.Module):
    """Learnable-frequency 2-D RoPE applied to NCHW maps on a ``[0, 1]`` grid.

    ``freqs`` ``(2, dim)`` is a parameter (part of official checkpoints). Its initial value, valid without any
    ``init_weights`` call: ``theta ** linspace(0, -1, dim/4)``, duplicated for the channel pairs, the first half
    of the channels on rows and the second half on columns, times 2π.

    Args:
        dim: channels of the maps it is applied to (multiple of 4).
        theta: frequency base (100 in JAFAR).
    """

    def __init__(self, dim: int, theta: float = 100.0) -> None:
        super().__init__()
        if dim % 4:
            raise ValueError(f'RoPE2d needs a channel count divisible by 4, got {dim}')
        self.dim, self.theta = dim, theta
        freqs_1d = theta ** torch.linspace(0, -1, dim // 4)
        freqs_1d = torch.cat([freqs_1d, freqs_1d])
        freqs = torch.zeros(2, dim)
        freqs[0, :dim // 2] = freqs_1d
        freqs[1, -dim // 2:] = freqs_1d
        self.freqs = nn.Parameter(freqs * 2 * math.pi)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return apply_rope_2d(x, self.freqs)

    def extra_repr(self) -> str:
        return f'dim={self.dim}, theta={self.theta}'
