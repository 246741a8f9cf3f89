"""Resizing helpers shared by the upsamplers: features to an exact size, guidance images to a stage's grid."""
from typing import Optional, Sequence

import torch
import torch.nn.functional as F

INTERPOLATION_MODES = ('bilinear', 'bicubic', 'nearest', 'nearest-exact')


def resize_features(features: torch.Tensor, size: Sequence[int], mode: str = 'bilinear',
                    align_corners: Optional[bool] = False, antialias: bool = False) -> torch.Tensor:
    """``F.interpolate`` to ``size`` ``(H, W)``; returns ``features`` itself when it already has that size.

    Fixed-ratio upsamplers use it for the last step of the JAFAR evaluation protocol (stacked x2 stages, then
    bilinear to the exact requested size). ``align_corners`` is ignored (must be None for torch) in the
    nearest modes.
    """
    if mode not in INTERPOLATION_MODES:
        raise ValueError(f'mode must be one of {INTERPOLATION_MODES}, got {mode!r}')
    size = tuple(int(s) for s in size)
    if tuple(features.shape[-2:]) == size:
        return features
    if mode.startswith('nearest'):
        return F.interpolate(features, size=size, mode=mode)
    return F.interpolate(features, size=size, mode=mode, align_corners=align_corners, antialias=antialias)


def resize_guidance(image: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """The guidance image at ``size``: unchanged if equal, area-averaged when shrinking on both axes, else bilinear.

    Area averaging (``adaptive_avg_pool2d``) is how FeatUp, JAFAR and SAPA bring the image to a coarse grid;
    bilinear (``align_corners=False``) is how LiFT enlarges it between iterations.
    """
    size = tuple(int(s) for s in size)
    height, width = image.shape[-2:]
    if (height, width) == size:
        return image
    if size[0] <= height and size[1] <= width:
        return F.adaptive_avg_pool2d(image, size)
    return F.interpolate(image, size=size, mode='bilinear', align_corners=False)
