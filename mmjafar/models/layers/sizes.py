"""The one size policy: validated ``(H, W)`` sizes, and the size a scale factor or a stride gives.

Every module that derives an output size from another size uses :func:`scaled_size`: upsamplers built with
``scale_factor``, :class:`~mmjafar.models.necks.FeatureUpsamplerNeck`, the up-scaled levels of
``GuidedMultiLevelNeck``, the pretrainer's guidance image and the BEV image branch (``target_stride``). The rule
is ``floor``, the size ``F.interpolate(scale_factor=s)`` and a stride-``s`` convolution grid give:

* ``scale_factor=s``: ``(floor(H * s), floor(W * s))``;
* ``stride=s``: ``(floor(H / s), floor(W / s))`` (a division, so exact multiples stay exact);

and at least 1 on each axis.

Example:
    >>> scaled_size((37, 64), scale_factor=0.5)
    (18, 32)
    >>> scaled_size((224, 480), stride=8), scaled_size((28, 60), stride=8)
    ((28, 60), (3, 7))
"""
import math
from typing import List, Optional, Sequence, Tuple, Union

import torch

SizeLike = Union[int, Sequence[int]]


def to_size(size: SizeLike, name: str = 'output_size') -> Tuple[int, int]:
    """``int`` or ``(H, W)`` to a validated ``(H, W)`` tuple of positive ints."""
    if isinstance(size, torch.Size) or isinstance(size, (tuple, list)):
        if len(size) != 2:
            raise ValueError(f'{name} must be an int or a (height, width) pair, got {size!r}')
        size = tuple(size)
    else:
        size = (size, size)
    if not all(isinstance(s, int) and not isinstance(s, bool) or (torch.is_tensor(s) and s.numel() == 1)
               for s in size):
        raise TypeError(f'{name} must hold integers, got {size!r}')
    size = tuple(int(s) for s in size)
    if min(size) <= 0:
        raise ValueError(f'{name} must be positive, got {size}')
    return size


def check_scale(value: Optional[float], name: str = 'scale_factor', owner: str = '') -> Optional[float]:
    """``value`` if it is None or positive, else a one-line ``ValueError`` naming ``owner`` and ``name``."""
    if value is not None and not value > 0:
        raise ValueError(f'{owner + ": " if owner else ""}{name} must be positive, got {value}')
    return value


def scaled_size(size: Sequence[int], scale_factor: Optional[float] = None,
                stride: Optional[float] = None) -> Tuple[int, int]:
    """``(H, W)`` times ``scale_factor`` or divided by ``stride`` (exactly one of them), floored, at least 1."""
    if (scale_factor is None) == (stride is None):
        raise ValueError(f'scaled_size: give exactly one of scale_factor and stride, got {scale_factor}, {stride}')
    height, width = (int(s) for s in size)
    if stride is not None:
        check_scale(stride, 'stride')
        return max(1, math.floor(height / stride)), max(1, math.floor(width / stride))
    check_scale(scale_factor)
    return max(1, math.floor(height * scale_factor)), max(1, math.floor(width * scale_factor))


def unique_sizes(sizes: Sequence[Sequence[int]]) -> List[Tuple[int, int]]:
    """Distinct ``(H, W)`` tuples of ``sizes`` in first-seen order (the sizes an image encoding is pooled to)."""
    return list(dict.fromkeys(tuple(int(s) for s in size) for size in sizes))
