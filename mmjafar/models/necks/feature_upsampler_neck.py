"""A neck that runs any registered upsampler on chosen backbone maps (torch + mmengine only)."""
from typing import Dict, List, Optional, Sequence, Union

import torch
from mmengine.model import BaseModule
from torch import nn

from mmjafar.registry import MODELS
from mmjafar.structures import GuidedFeatures
from ..checkpoint_loading import StrictPretrainedMixin
from ..layers.freezing import freeze
from ..layers.sizes import SizeLike, check_scale, scaled_size, to_size
from ..upsamplers.base import BaseUpsampler


@MODELS.register_module()
class FeatureUpsamplerNeck(StrictPretrainedMixin, BaseModule):
    """Upsample chosen backbone maps with any registered upsampler, guided by the backbone's input image.

    Every upsampler is already a neck by itself (``neck=dict(type='JAFAR')`` upsamples every map); this wrapper
    adds what comparisons need: the upsampler given as a config (so bilinear, FeatUp, LiFT, LoftUp, JAFAR... drop
    into identical configs), a choice of maps, a neck-level output size, freezing, and an optional projection.

    Input: :class:`~mmjafar.structures.GuidedFeatures` (an mmjafar backbone, or any backbone inside
    ``GuidedEncoderDecoder``); plain tuples are accepted only by upsamplers that ignore the image.
    Output: GuidedFeatures of ``(B, C', H, W)`` maps, where ``C' = out_channels or C``.

    Args:
        upsampler: config of a registered upsampler, e.g. ``dict(type='JAFAR', v_dim=384)``.
        in_index: index (or indices) of the maps to upsample.
        keep_inputs: True returns every input map, the chosen ones replaced by their upsampled version (the
            positions a decode head's ``in_index`` refers to are preserved); False returns only the upsampled maps.
        output_size: output size (int or (H, W)) for every call; None defers to the upsampler's own default.
        scale_factor: output size as a multiple of each map's grid (used when ``output_size`` is None; floored,
            see :func:`~mmjafar.models.layers.sizes.scaled_size`).
        out_channels: None (default) preserves the channel count; an int appends a trainable 1x1 convolution per
            upsampled map projecting to that many channels.
        frozen: freeze the upsampler (no gradients, eval mode kept) for linear probing; a projection stays
            trainable.
        init_cfg: mmengine init config (e.g. ``dict(type='Pretrained', checkpoint=...)`` of a whole neck, loaded
            strictly unless it adds ``strict=False``); official upsampler checkpoints go in the upsampler's own
            ``init_cfg``.

    Example:
        >>> import torch
        >>> neck = FeatureUpsamplerNeck(dict(type='JAFAR', v_dim=32), output_size=(24, 20))
        >>> feats = GuidedFeatures([torch.randn(1, 32, 6, 5)], image=torch.randn(1, 3, 48, 40))
        >>> tuple(neck(feats)[0].shape)
        (1, 32, 24, 20)
    """

    def __init__(self, upsampler: Dict, in_index: Union[int, Sequence[int]] = -1, keep_inputs: bool = False,
                 output_size: Optional[SizeLike] = None, scale_factor: Optional[float] = None,
                 out_channels: Optional[int] = None, frozen: bool = False, init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.upsampler = MODELS.build(upsampler)
        if not isinstance(self.upsampler, BaseUpsampler):
            raise TypeError(f'FeatureUpsamplerNeck: upsampler type {upsampler.get("type")!r} built a '
                            f'{type(self.upsampler).__name__}, which is not a BaseUpsampler')
        self.in_index = [in_index] if isinstance(in_index, int) else list(in_index)
        if not self.in_index:
            raise ValueError('FeatureUpsamplerNeck: in_index is empty')
        self.keep_inputs = keep_inputs
        self.output_size = None if output_size is None else to_size(output_size)
        self.scale_factor = check_scale(scale_factor, owner='FeatureUpsamplerNeck')
        self.frozen = frozen
        self.projections = None
        if out_channels is not None:
            channels = self.upsampler.in_channels
            if channels is None:
                raise ValueError('FeatureUpsamplerNeck: out_channels needs an upsampler built for a fixed channel '
                                 f'count; {type(self.upsampler).__name__} takes any, so leave out_channels=None')
            self.projections = nn.ModuleList(nn.Conv2d(channels, out_channels, 1) for _ in self.in_index)
        if frozen:
            freeze(self.upsampler)  # the upsampler's own flag keeps it frozen through train() and init_weights()

    def _size(self, features: torch.Tensor) -> Optional[SizeLike]:
        if self.output_size is not None:
            return self.output_size
        if self.scale_factor is not None:
            return scaled_size(features.shape[-2:], self.scale_factor)
        return None

    def forward(self, inputs: Sequence[torch.Tensor]) -> GuidedFeatures:
        """GuidedFeatures of ``(B, C, h, w)`` maps -> GuidedFeatures of upsampled ``(B, C', H, W)`` maps."""
        image = getattr(inputs, 'image', None)
        if image is None and self.upsampler.uses_image:
            raise TypeError(f'FeatureUpsamplerNeck({type(self.upsampler).__name__}) needs the guidance image but got '
                            f'{type(inputs).__name__} without one; use an mmjafar backbone (they return '
                            'GuidedFeatures) or the GuidedEncoderDecoder segmentor for other backbones')
        maps: List[torch.Tensor] = list(inputs)
        indices = [i % len(maps) if -len(maps) <= i < len(maps) else None for i in self.in_index]
        if None in indices:
            raise IndexError(f'FeatureUpsamplerNeck: in_index {self.in_index} is out of range for {len(maps)} maps')
        # a frozen upsampler needs no graph unless gradients must reach a trainable backbone through it
        needs_grad = not self.upsampler.frozen or any(maps[i].requires_grad for i in indices)
        with torch.set_grad_enabled(torch.is_grad_enabled() and needs_grad):
            upsampled = [self.upsampler(image, maps[i], self._size(maps[i])) for i in indices]
        if self.projections is not None:
            upsampled = [proj(x) for proj, x in zip(self.projections, upsampled)]
        if not self.keep_inputs:
            return GuidedFeatures(upsampled, image=image)
        for i, x in zip(indices, upsampled):
            maps[i] = x
        return GuidedFeatures(maps, image=image)
