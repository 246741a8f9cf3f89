"""DySample: learning to upsample by dynamic point sampling (Liu et al., ICCV 2023), stacked x2 stages."""
from typing import Dict, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from mmjafar.registry import MODELS
from ..layers.resize import resize_features
from ..layers.stages import add_stages, run_stages
from .base import BaseUpsampler

DYSAMPLE_STYLES = ('lp', 'pl')


def base_positions(scale: int, groups: int) -> torch.Tensor:
    """``(1, 2*G*s*s, 1, 1)`` sub-pixel offsets (in input pixels) of the ``s x s`` children of a pixel.

    Channel ``axis * G*s*s + g * s*s + i*s + j`` holds the x (``axis`` 0) or y (``axis`` 1) offset of the child in
    row ``i``, column ``j``: offsets ``(k + 0.5) / s - 0.5`` (``-0.25, 0.25`` for ``s = 2``), so that zero learned
    offsets sample exactly the centres of the output pixels, i.e. bilinear upsampling.
    """
    steps = (torch.arange(scale, dtype=torch.float32) + 0.5) / scale - 0.5
    x_off = steps.view(1, scale).expand(scale, scale)
    y_off = steps.view(scale, 1).expand(scale, scale)
    return torch.stack([x_off, y_off]).unsqueeze(1).expand(2, groups, scale, scale).reshape(1, -1, 1, 1)


def point_sample(features: torch.Tensor, offsets: torch.Tensor, scale: int, groups: int) -> torch.Tensor:
    """Bilinearly sample ``features`` at the pixel centres moved by ``offsets``.

    Args:
        features: ``(B, C, h, w)``, ``C`` divisible by ``groups``.
        offsets: ``(B, 2*G*s*s, h, w)`` positions relative to each input pixel's centre, in input pixels, laid out
            as in :func:`base_positions` (x offsets first).
        scale: ``s``.
        groups: ``G``; channel group ``g`` is sampled at its own positions.

    Returns:
        ``(B, C, s*h, s*w)`` (border padding, ``align_corners=False`` coordinates).
    """
    b, c, h, w = features.shape
    offsets = offsets.view(b, 2, -1, h, w)
    centre_x = torch.arange(w, device=features.device, dtype=features.dtype) + 0.5
    centre_y = torch.arange(h, device=features.device, dtype=features.dtype) + 0.5
    grid_x = 2 * (centre_x.view(1, 1, 1, w) + offsets[:, 0]) / w - 1
    grid_y = 2 * (centre_y.view(1, 1, h, 1) + offsets[:, 1]) / h - 1
    grid = F.pixel_shuffle(torch.stack([grid_x, grid_y], dim=1).view(b, -1, h, w), scale)
    grid = grid.view(b, 2, groups, scale * h, scale * w).permute(0, 2, 3, 4, 1).reshape(b * groups, scale * h,
                                                                                            scale * w, 2)
    out = F.grid_sample(features.reshape(b * groups, c // groups, h, w), grid, mode='bilinear',
                        padding_mode='border', align_corners=False)
    return out.view(b, c, scale * h, scale * w)


class DySampleStage(nn.Module):
    """One DySample stage (parameter names of the official module: ``offset``, ``scope``, ``init_pos``).

    Offsets are predicted by a 1x1 convolution, scaled by 0.25 (static scope) or by ``0.5 * sigmoid(scope(x))``
    (``dyscope``), added to :func:`base_positions` and used by :func:`point_sample`. Style 'lp' predicts them
    from the input grid; 'pl' pixel-shuffles the input first and predicts one offset pair per output pixel.

    Args:
        channels: feature channels.
        scale: upsampling ratio.
        style: 'lp' or 'pl'.
        groups: offset groups (channel groups sampled at their own positions).
        dyscope: learn a per-point scope.
    """

    def __init__(self, channels: int, scale: int = 2, style: str = 'lp', groups: int = 4,
                 dyscope: bool = False) -> None:
        super().__init__()
        if style not in DYSAMPLE_STYLES:
            raise ValueError(f'DySample style must be one of {DYSAMPLE_STYLES}, got {style!r}')
        if channels % groups:
            raise ValueError(f'DySample: channels ({channels}) must be divisible by groups ({groups})')
        if style == 'pl' and channels % (scale * scale):
            raise ValueError(f"DySample(style='pl'): channels ({channels}) must be divisible by scale^2")
        self.scale, self.style, self.groups = scale, style, groups
        in_ch = channels // (scale * scale) if style == 'pl' else channels
        out_ch = 2 * groups if style == 'pl' else 2 * groups * scale * scale
        self.offset = nn.Conv2d(in_ch, out_ch, 1)
        nn.init.normal_(self.offset.weight, std=0.001)
        nn.init.zeros_(self.offset.bias)
        if dyscope:
            self.scope = nn.Conv2d(in_ch, out_ch, 1, bias=False)
            nn.init.zeros_(self.scope.weight)
        self.register_buffer('init_pos', base_positions(scale, groups))

    def offsets(self, x: torch.Tensor) -> torch.Tensor:
        """Learned positions ``(B, 2*G*s*s, h, w)`` relative to the input pixel centres."""
        source = F.pixel_shuffle(x, self.scale) if self.style == 'pl' else x
        if hasattr(self, 'scope'):
            learned = self.offset(source) * self.scope(source).sigmoid()
            factor = 0.5
        else:
            learned, factor = self.offset(source), 0.25
        if self.style == 'pl':
            learned = F.pixel_unshuffle(learned, self.scale)
        return learned * factor + self.init_pos

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return point_sample(x, self.offsets(x), self.scale, self.groups)


@MODELS.register_module()
class DySample(BaseUpsampler):
    """Task-dependent baseline: ``num_stages`` DySample x2 stages (x16 by default), then bilinear to the exact size.

    The JAFAR evaluation protocol trains it jointly with the probe. It does not use the image. Stages are
    named ``up1 ... upN`` and carry the official module's parameter names.

    Args:
        channels: feature channels.
        num_stages: x2 stages (4: x16).
        style, groups, dyscope: see :class:`DySampleStage` (defaults 'lp', 4, False: DySample-S).
        **kwargs: :class:`BaseUpsampler`'s arguments (output size, scale factor, freezing, checks, init).

    Example:
        >>> import torch
        >>> DySample(channels=384)(None, torch.randn(1, 384, 4, 4), (56, 56)).shape
        torch.Size([1, 384, 56, 56])
    """

    uses_image = False
    channels_arg = 'channels'
    stages_arg = 'num_stages'

    def __init__(self, channels: int = 384, num_stages: int = 4, style: str = 'lp', groups: int = 4,
                 dyscope: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        self.channels = channels
        add_stages(self, num_stages, lambda: DySampleStage(channels, 2, style, groups, dyscope))

    def upsample(self, image: Optional[torch.Tensor], features: torch.Tensor,
                 output_size: Tuple[int, int]) -> torch.Tensor:
        return resize_features(run_stages(self, features, output_size=output_size)[-1], output_size)

    def check_checkpoint(self, state_dict: Dict[str, torch.Tensor]) -> None:
        super().check_checkpoint(state_dict)
        weight = state_dict.get('up1.offset.weight')
        expected = self.up1.offset.weight.shape
        if weight is not None and weight.shape != expected:
            raise ValueError(f'DySample: checkpoint offset conv has shape {tuple(weight.shape)}, this module '
                             f'{tuple(expected)}; rebuild with the checkpoint\'s channels / groups / style')
