"""Training-free baselines: bilinear, nearest and bicubic interpolation of the low-resolution features."""
from typing import Optional, Tuple

import torch

from mmjafar.registry import MODELS
from ..layers.resize import resize_features
from .base import BaseUpsampler


class _Interpolation(BaseUpsampler):
    """Shared body of the interpolation baselines (no parameters, image ignored)."""

    uses_image = False
    mode: str = ''

    def __init__(self, align_corners: Optional[bool] = False, antialias: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        self.align_corners = align_corners
        self.antialias = antialias

    def upsample(self, image: Optional[torch.Tensor], features: torch.Tensor,
                 output_size: Tuple[int, int]) -> torch.Tensor:
        return resize_features(features, output_size, mode=self.mode, align_corners=self.align_corners,
                               antialias=self.antialias)

    def extra_repr(self) -> str:
        return f'mode={self.mode!r}, align_corners={self.align_corners}, antialias={self.antialias}'


@MODELS.register_module()
class Bilinear(_Interpolation):
    """Bilinear interpolation of the features to the output size (``F.interpolate(mode='bilinear')``).

    ``align_corners=False`` (default, the convention of every method compared in JAFAR): pixels are squares
    and output pixel ``X`` samples input coordinate ``(X + 0.5) * w / W - 0.5`` (clamped at the border), so
    the output grid covers the same area as the input grid. ``align_corners=True``: the centres of the corner
    pixels coincide, output ``X`` samples ``X * (w - 1) / (W - 1)``; corner values are copied exactly and the
    map shifts by up to half an input pixel compared with ``False``.

    Args:
        align_corners: see above.
        antialias: low-pass before shrinking (only matters when the output is smaller than the input).
        **kwargs: :class:`BaseUpsampler`'s arguments (output size, scale factor, checks, init).

    Example:
        >>> import torch
        >>> Bilinear()(None, torch.randn(1, 384, 8, 8), (56, 40)).shape
        torch.Size([1, 384, 56, 40])
    """

    mode = 'bilinear'


@MODELS.register_module()
class Bicubic(_Interpolation):
    """Bicubic interpolation (Keys kernel, ``a = -0.75`` as torch; values may overshoot the input range).

    ``align_corners`` has the same meaning as in :class:`Bilinear` (default False).

    Args:
        align_corners: see :class:`Bilinear`.
        antialias: low-pass before shrinking.
        **kwargs: :class:`BaseUpsampler`'s arguments (output size, scale factor, checks, init).
    """

    mode = 'bicubic'


@MODELS.register_module()
class Nearest(_Interpolation):
    """Nearest-neighbour interpolation: every output pixel copies one feature vector.

    ``align_corners`` does not apply to nearest interpolation. ``exact=False`` (default) is torch's 'nearest':
    output ``X`` copies input ``floor(X * w / W)``; ``exact=True`` is 'nearest-exact': input
    ``floor((X + 0.5) * w / W)``, the pixel whose area contains the output pixel's centre. Both agree for
    integer upsampling ratios (each input pixel becomes an ``r x r`` block).

    Args:
        exact: use 'nearest-exact' instead of 'nearest'.
        **kwargs: :class:`BaseUpsampler`'s arguments (output size, scale factor, checks, init).
    """

    def __init__(self, exact: bool = False, **kwargs) -> None:
        super().__init__(align_corners=None, antialias=False, **kwargs)
        self.mode = 'nearest-exact' if exact else 'nearest'

    def extra_repr(self) -> str:
        return f'mode={self.mode!r}'
