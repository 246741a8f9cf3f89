"""UPLiFT's Local Attender: a softmax over a fixed neighbourhood of the coarse map, predicted from a fine guide.

For an output pixel ``(Y, X)`` of a grid ``s`` times finer than the value map (``s`` an integer), with parent
``(y, x) = (Y // s, X // s)`` and a fixed set of ``D`` offsets ``(dy_d, dx_d)``::

    out[b, c, Y, X] = sum_d softmax_d(logits)[b, d, Y, X] * value[b, c, clamp(y + dy_d), clamp(x + dx_d)]

(edge-replicated neighbours). No queries or keys: the ``D`` logits per output pixel come from the guide through a
1x1 convolution (plus the guide's first ``D`` channels as a residual). Cost and memory are linear in the output
size: :func:`local_attend` adds the ``D`` shifted value maps one after another into each sub-pixel phase of the
output and never holds the ``(B, C, D, H, W)`` stack.
"""
from typing import Dict, List, Tuple

import torch
import torch.nn.functional as F
from torch import nn

#: neighbourhood offsets ``(dy, dx)`` of each size, in the order of the logits' channels (upstream's order).
NEIGHBOURHOODS: Dict[int, List[Tuple[int, int]]] = {
    5: [(-1, 0), (0, -1), (0, 0), (0, 1), (1, 0)],
    9: [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)],
    13: [(-2, 0)] + [(-1, dx) for dx in (-1, 0, 1)] + [(0, dx) for dx in range(-2, 3)]
        + [(1, dx) for dx in (-1, 0, 1)] + [(2, 0)],
    17: [(-2, -2), (-2, 0), (-2, 2)] + [(-1, dx) for dx in (-1, 0, 1)] + [(0, dx) for dx in range(-2, 3)]
        + [(1, dx) for dx in (-1, 0, 1)] + [(2, -2), (2, 0), (2, 2)],
    25: [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)],
}


def channel_residual(shortcut: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``shortcut + x`` for maps whose channel counts may differ: the shortcut is cut to, or zero-padded up to,
    the channels of ``x`` (UPLiFT's residual rule)."""
    extra = x.shape[1] - shortcut.shape[1]
    if extra < 0:
        shortcut = shortcut[:, :x.shape[1]]
    elif extra > 0:
        shortcut = F.pad(shortcut, (0, 0, 0, 0, 0, extra))
    return shortcut + x


def _check(weights: torch.Tensor, value: torch.Tensor, offsets: List[Tuple[int, int]]) -> Tuple[int, int]:
    """``(scale, pad)`` of a call, or a one-line error for inconsistent shapes."""
    h, w = value.shape[-2:]
    big_h, big_w = weights.shape[-2:]
    scale = big_h // h
    if scale * h != big_h or scale * w != big_w or weights.shape[1] != len(offsets):
        raise ValueError(f'local_attend: weights {tuple(weights.shape)} must have {len(offsets)} channels and a grid '
                         f'one integer multiple of the value grid {(h, w)}')
    return scale, max(max(abs(dy), abs(dx)) for dy, dx in offsets)


def _taps(value: torch.Tensor, offsets: List[Tuple[int, int]], pad: int) -> Tuple[torch.Tensor, List]:
    """The edge-replicated value and its ``D`` shifted ``(B, C, h, w)`` views (one per offset)."""
    h, w = value.shape[-2:]
    padded = F.pad(value, (pad, pad, pad, pad), mode='replicate')
    return padded, [(slice(pad + dy, pad + dy + h), slice(pad + dx, pad + dx + w)) for dy, dx in offsets]


def _phases(weights: torch.Tensor, scale: int, dtype: torch.dtype) -> torch.Tensor:
    """``(B, D, s*h, s*w) -> (s, s, B, D, h, w)``: the weights of each sub-pixel phase as contiguous maps."""
    batch, taps, big_h, big_w = weights.shape
    phases = weights.to(dtype).reshape(batch, taps, big_h // scale, scale, big_w // scale, scale)
    return phases.permute(3, 5, 0, 1, 2, 4).contiguous()


def _attend(weights: torch.Tensor, value: torch.Tensor, offsets: List[Tuple[int, int]]) -> torch.Tensor:
    scale, pad = _check(weights, value, offsets)
    batch, channels, h, w = value.shape
    padded, windows = _taps(value, offsets, pad)
    phases = _phases(weights, scale, value.dtype)
    out = value.new_empty(batch, channels, h, scale, w, scale)
    for i in range(scale):
        for j in range(scale):
            acc = value.new_zeros(batch, channels, h, w)
            for d, (rows, cols) in enumerate(windows):
                acc.addcmul_(padded[:, :, rows, cols], phases[i, j, :, d:d + 1])
            out[:, :, :, i, :, j] = acc
    return out.reshape(batch, channels, h * scale, w * scale)


class _LocalAttend(torch.autograd.Function):
    """:func:`local_attend` with a hand-written backward: autograd's own would allocate a zero-filled gradient of
    the whole padded value (and of all weights) for every tap and phase slice."""

    @staticmethod
    def forward(ctx, weights, value, offsets):
        ctx.save_for_backward(weights, value)
        ctx.offsets = offsets
        return _attend(weights, value, offsets)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out):
        weights, value = ctx.saved_tensors
        offsets = ctx.offsets
        scale, pad = _check(weights, value, offsets)
        batch, channels, h, w = value.shape
        padded, windows = _taps(value, offsets, pad)
        phases = _phases(weights, scale, value.dtype)
        grad = grad_out.to(value.dtype).reshape(batch, channels, h, scale, w, scale)
        want_w, want_v = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        grad_phases = phases.new_empty(phases.shape) if want_w else None
        grad_padded = torch.zeros_like(padded) if want_v else None
        for i in range(scale):
            for j in range(scale):
                g = grad[:, :, :, i, :, j].contiguous()
                for d, (rows, cols) in enumerate(windows):
                    if want_w:
                        grad_phases[i, j, :, d] = (g * padded[:, :, rows, cols]).sum(1)
                    if want_v:
                        grad_padded[:, :, rows, cols].addcmul_(g, phases[i, j, :, d:d + 1])
        grad_weights = grad_value = None
        if want_w:
            grad_weights = grad_phases.permute(2, 3, 4, 0, 5, 1).reshape(weights.shape).to(weights.dtype)
        if want_v:
            grad_value = torch.ops.aten.replication_pad2d_backward(grad_padded, value, [pad] * 4)
        return grad_weights, grad_value, None


def local_attend(weights: torch.Tensor, value: torch.Tensor, offsets: List[Tuple[int, int]]) -> torch.Tensor:
    """Weighted sum over a neighbourhood of the coarse ``value`` map, for every pixel of the finer grid.

    Computed per sub-pixel phase ``(i, j)`` of the ``s x s`` block above each coarse pixel: a ``(B, C, h, w)``
    accumulator receives the ``D`` shifted value maps one after another (contiguous inner loops, no ``D``-fold
    stack), then fills its phase of the output. The backward pass is computed the same way (custom autograd
    function; first-order gradients only).

    Args:
        weights: ``(B, D, H, W)`` attention weights (already normalised), ``D = len(offsets)``.
        value: ``(B, C, h, w)`` with ``H = s * h`` and ``W = s * w`` for one integer ``s``.
        offsets: the ``D`` neighbour offsets ``(dy, dx)``; borders are edge-replicated.

    Returns:
        ``(B, C, H, W)``.
    """
    if torch.is_grad_enabled() and (weights.requires_grad or value.requires_grad):
        return _LocalAttend.apply(weights, value, list(offsets))
    return _attend(weights, value, offsets)


class LocalAttender(nn.Module):
    """Guide ``(B, C_g, H, W)`` and coarse value ``(B, C, h, w)`` -> ``(B, C, H, W)`` (see the module docstring).

    Parameter names follow UPLiFT's checkpoints (``conv1``).

    Args:
        in_channels: guide channels ``C_g``.
        num_connected: neighbourhood size ``D``: 5, 9, 13, 17 or 25.
        conv_res: add the guide's first ``D`` channels (zero-padded if fewer) to the logits.
    """

    def __init__(self, in_channels: int, num_connected: int = 17, conv_res: bool = True) -> None:
        super().__init__()
        if num_connected not in NEIGHBOURHOODS:
            raise ValueError(f'LocalAttender: num_connected must be one of {sorted(NEIGHBOURHOODS)}, got '
                             f'{num_connected}')
        self.num_connected = num_connected
        self.offsets = NEIGHBOURHOODS[num_connected]
        self.conv_res = conv_res
        self.conv1 = nn.Conv2d(in_channels, num_connected, kernel_size=1)

    def weights(self, guide: torch.Tensor) -> torch.Tensor:
        """``(B, C_g, H, W) -> (B, D, H, W)`` softmax weights over the neighbourhood."""
        logits = self.conv1(guide)
        if self.conv_res:
            logits = channel_residual(guide, logits)
        return logits.softmax(dim=1)

    def forward(self, guide: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        return local_attend(self.weights(guide), value, self.offsets)
