"""Per-pixel operations on a k x k window of a (possibly coarser) map: the core of CARAFE, SAPA and FeatUp's JBU.

Every output pixel ``(Y, X)`` of a grid ``s`` times finer than the input looks at the ``k x k`` window of the
input centred on its parent pixel ``(Y // s, X // s)``; taps ``t = i * k + j`` are row-major (``nn.Unfold``
order). Two reductions over that window are provided:

* :func:`local_similarity` — ``logits[b, t, Y, X] = sum_e q[b, e, Y, X] * pad(key)[b, e, Y//s + i, X//s + j]``
  (SAPA's similarity, FeatUp's range kernel with ``s = 1``);
* :func:`local_weighted_sum` — ``out[b, c, Y, X] = sum_t w[b, g(c), t, Y, X] * pad(x)[b, c, Y//s + i, X//s + j]``
  (CARAFE's reassembly, SAPA's aggregation, FeatUp's adaptive convolution with ``s = 1``).

Both are exact pure-PyTorch implementations (any device, autograd for free) that never unfold the input ``k*k``
times: they loop over the ``s*s`` sub-pixel phases and the ``k*k`` taps, each step a strided slice and a
multiply-add on ``(B, C, h, w)`` tensors. :func:`local_weighted_sum` adds the taps one after another in row-major
order starting from zero, the accumulation order of FeatUp's reference C++ kernel and of mmcv's CARAFE kernel.
"""
from typing import List

import torch
import torch.nn.functional as F

PADDING_MODES = ('zeros', 'reflect', 'replicate')


def _scale_of(fine: torch.Tensor, coarse: torch.Tensor, what: str) -> int:
    """The integer ratio between the spatial sizes of ``fine`` and ``coarse`` (same on both axes)."""
    (fh, fw), (ch, cw) = fine.shape[-2:], coarse.shape[-2:]
    if fh % ch or fw % cw or fh // ch != fw // cw:
        raise ValueError(f'{what}: the fine grid {(fh, fw)} must be the coarse grid {(ch, cw)} times one integer '
                         'scale on both axes')
    return fh // ch


def _pad(x: torch.Tensor, radius: int, padding_mode: str) -> torch.Tensor:
    if padding_mode not in PADDING_MODES:
        raise ValueError(f'padding_mode must be one of {PADDING_MODES}, got {padding_mode!r}')
    if radius == 0:
        return x
    if padding_mode == 'zeros':
        return F.pad(x, [radius] * 4)
    if padding_mode == 'reflect' and min(x.shape[-2:]) <= radius:
        raise ValueError(f'reflect padding by {radius} needs a map larger than {radius} pixels on each side, got '
                         f'{tuple(x.shape[-2:])}; use larger inputs')
    return F.pad(x, [radius] * 4, mode=padding_mode)


def _check_kernel_size(kernel_size: int) -> int:
    if kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f'kernel_size must be a positive odd number, got {kernel_size}')
    return kernel_size // 2


def _interleave(phases: List[torch.Tensor], scale: int) -> torch.Tensor:
    """``s*s`` maps ``(B, C, h, w)`` of the phases ``(dy, dx)`` (row-major) to one ``(B, C, s*h, s*w)`` map."""
    if scale == 1:
        return phases[0]
    b, c, h, w = phases[0].shape
    return F.pixel_shuffle(torch.stack(phases, dim=2).reshape(b, c * scale * scale, h, w), scale)


def local_similarity(query: torch.Tensor, key: torch.Tensor, kernel_size: int,
                     padding_mode: str = 'zeros') -> torch.Tensor:
    """Dot products of every fine query with the ``k x k`` keys around its parent pixel.

    Args:
        query: ``(B, E, s*h, s*w)``.
        key: ``(B, E, h, w)``; positions outside the map are padded by ``padding_mode`` (with 'zeros' an
            outside tap gets the logit 0, as in SAPA's kernel).
        kernel_size: odd window size ``k``.
        padding_mode: 'zeros', 'reflect' or 'replicate'.

    Returns:
        ``(B, k*k, s*h, s*w)`` logits, taps row-major.
    """
    radius = _check_kernel_size(kernel_size)
    if query.shape[:2] != key.shape[:2]:
        raise ValueError(f'local_similarity: query {tuple(query.shape)} and key {tuple(key.shape)} must share '
                         'batch and channel sizes')
    scale = _scale_of(query, key, 'local_similarity')
    h, w = key.shape[-2:]
    padded = _pad(key, radius, padding_mode)
    phases = []
    for dy in range(scale):
        for dx in range(scale):
            q = query[:, :, dy::scale, dx::scale].contiguous() if scale > 1 else query
            taps = [(q * padded[:, :, i:i + h, j:j + w]).sum(1) for i in range(kernel_size)
                    for j in range(kernel_size)]
            phases.append(torch.stack(taps, dim=1))
    return _interleave(phases, scale)


def local_weighted_sum(weights: torch.Tensor, features: torch.Tensor, kernel_size: int,
                       padding_mode: str = 'zeros') -> torch.Tensor:
    """Reassemble ``features`` with one ``k x k`` kernel per fine output pixel (and channel group).

    Args:
        weights: ``(B, G*k*k, s*h, s*w)`` kernels, group-major (channel ``g*k*k + t``, as mmcv's CARAFE).
        features: ``(B, C, h, w)`` with ``C`` divisible by ``G``; channel ``c`` uses group ``c // (C / G)``.
        kernel_size: odd window size ``k``.
        padding_mode: how taps outside the map are filled ('zeros' skips them, as mmcv's CARAFE and SAPA do).

    Returns:
        ``(B, C, s*h, s*w)``.
    """
    radius = _check_kernel_size(kernel_size)
    taps = kernel_size * kernel_size
    b, c, h, w = features.shape
    if weights.shape[0] != b or weights.shape[1] % taps:
        raise ValueError(f'local_weighted_sum: weights {tuple(weights.shape)} must be (B={b}, G*{taps}, H, W)')
    groups = weights.shape[1] // taps
    if c % groups:
        raise ValueError(f'local_weighted_sum: {c} feature channels do not split into {groups} kernel groups')
    scale = _scale_of(weights, features, 'local_weighted_sum')
    padded = _pad(features, radius, padding_mode).view(b, groups, c // groups, h + 2 * radius, w + 2 * radius)
    kernels = weights.view(b, groups, taps, *weights.shape[-2:])
    phases = []
    for dy in range(scale):
        for dx in range(scale):
            k = kernels[..., dy::scale, dx::scale].contiguous() if scale > 1 else kernels
            out = None
            for i in range(kernel_size):
                for j in range(kernel_size):
                    term = k[:, :, i * kernel_size + j, None] * padded[..., i:i + h, j:j + w]
                    out = term if out is None else out + term
            phases.append(out.reshape(b, c, h, w))
    return _interleave(phases, scale)
