"""Bring the coarse levels of a hierarchical backbone to one level's grid with a registered upsampler."""
from typing import Dict, Sequence

import torch
from mmengine.model import BaseModule

from mmjafar.registry import MODELS
from mmjafar.structures import GuidedFeatures
from ..checkpoint_loading import StrictPretrainedMixin
from .level_upsamplers import LevelUpsamplers, check_levels


@MODELS.register_module()
class GuidedAlignNeck(StrictPretrainedMixin, BaseModule):
    """Upsample every level coarser than ``target_level`` to that level's grid, guided by the input image.

    For hierarchical backbones (MiT, Swin, ResNet, ConvNeXt, or an FPN's outputs) whose decoders resize the
    coarse levels to the finest one (SegformerHead, UPerHead, FPNHead): this neck does those resizes with a
    registered upsampler instead, so the decoder's own resizes become identities. Channel counts do not change,
    so the decode head keeps its ``in_channels``; heads that upsample by declared strides (``FPNHead``'s
    ``feature_strides``) must be told that every level is now at the target stride.

    One upsampler is built per channel count from the ``upsampler`` template (its ``channels_arg``, e.g.
    ``v_dim`` or ``channels``, filled in from ``in_channels``; x2-stage methods get the stages their largest
    up-scale needs), or one per level with ``share_upsampler=False``. Each runs once per forward for all its
    levels, so a guided method encodes the image once. Needs the guidance image: use it with mmjafar backbones
    or inside ``GuidedEncoderDecoder``.

    Args:
        in_channels: channels of each input level.
        upsampler: upsampler config, e.g. ``dict(type='JAFAR')`` or ``dict(type='CARAFE')``.
        in_strides: stride of each input level (only the ratios matter); checked against the actual grids.
        target_level: index of the level whose grid every coarser level is brought to (0: the finest).
        share_upsampler: levels with equal channels share one upsampler.
        init_cfg: mmengine init config of the whole neck (upsampler checkpoints go in the template's init_cfg).

    Shapes: levels ``(B, C_i, h_i, w_i)`` -> the same levels, those coarser than the target at
    ``(B, C_i, h_t, w_t)``.

    Example:
        >>> import torch
        >>> neck = GuidedAlignNeck([8, 16, 16], dict(type='Bilinear'), in_strides=[4, 8, 16])
        >>> feats = GuidedFeatures([torch.randn(1, 8, 16, 16), torch.randn(1, 16, 8, 8),
        ...                         torch.randn(1, 16, 4, 4)], image=torch.randn(1, 3, 64, 64))
        >>> [tuple(x.shape) for x in neck(feats)]
        [(1, 8, 16, 16), (1, 16, 16, 16), (1, 16, 16, 16)]
    """

    def __init__(self, in_channels: Sequence[int], upsampler: Dict, in_strides: Sequence[int] = (4, 8, 16, 32),
                 target_level: int = 0, share_upsampler: bool = True, init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        name = type(self).__name__
        self.in_channels, self.in_strides = list(in_channels), list(in_strides)
        if len(self.in_strides) != len(self.in_channels):
            raise ValueError(f'{name}: in_strides {self.in_strides} and in_channels {self.in_channels} must have '
                             'one entry per level')
        if not -len(self.in_channels) <= target_level < len(self.in_channels):
            raise IndexError(f'{name}: target_level {target_level} is out of range for {len(self.in_channels)} '
                             'levels (in_channels)')
        self.target_level = target_level % len(self.in_channels)
        target_stride = self.in_strides[self.target_level]
        self.ratios = [s / target_stride if s > target_stride else None for s in self.in_strides]
        self.upsamplers = LevelUpsamplers(name, upsampler,
                                          [c if r else None for c, r in zip(self.in_channels, self.ratios)],
                                          self.ratios, share=share_upsampler)

    def _check_grid(self, level: int, grid, target) -> None:
        ratio = self.ratios[level]
        for n, t in zip(grid, target):
            if not (n - 1) * ratio < t <= n * ratio:
                raise ValueError(f'{type(self).__name__}: level {level} has grid {tuple(grid)} and the target level '
                                 f'{self.target_level} {tuple(target)}, not a x{ratio:g} ratio as in_strides '
                                 f'{self.in_strides} say; set in_strides to the backbone\'s strides')

    def forward(self, inputs: Sequence[torch.Tensor]) -> GuidedFeatures:
        image = check_levels(type(self).__name__, inputs, self.in_channels)
        target = tuple(inputs[self.target_level].shape[-2:])
        maps = {i: x for i, x in enumerate(inputs) if self.ratios[i] is not None}
        for i, x in maps.items():
            self._check_grid(i, x.shape[-2:], target)
        outs = self.upsamplers(image, maps, {i: target for i in maps})
        return GuidedFeatures([outs.get(i, x) for i, x in enumerate(inputs)], image=image)
