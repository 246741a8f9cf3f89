"""mmseg's ``MultiLevelNeck`` with its up-scales done by a registered upsampler (imported only with mmseg)."""
from typing import Dict, Optional, Sequence

import torch
import torch.nn.functional as F
from mmengine.model.weight_init import xavier_init
from mmseg.models.necks import MultiLevelNeck

from mmjafar.registry import MODELS
from mmjafar.structures import GuidedFeatures
from ..checkpoint_loading import StrictPretrainedMixin
from ..layers.sizes import scaled_size
from .level_upsamplers import LevelUpsamplers, check_levels


@MODELS.register_module()
class GuidedMultiLevelNeck(StrictPretrainedMixin, MultiLevelNeck):
    """Drop-in for mmseg's ``MultiLevelNeck`` (ViT -> UPerNet) whose up-scales are done by an upsampler.

    Same arguments, parameter names and computation as ``MultiLevelNeck`` (1x1 lateral convs, a resize by
    ``scales[i]``, 3x3 convs), so stock checkpoints load; every level with ``scales[i] > 1`` is resized by a
    registered upsampler guided by the input image instead of bilinear interpolation, to
    ``(floor(h * s), floor(w * s))`` (the size ``F.interpolate(scale_factor=s)`` gives). Levels with
    ``scales[i] <= 1`` are resized bilinearly, as mmseg does. With ``upsampler=dict(type='Bilinear')`` the output
    equals ``MultiLevelNeck``'s on the same weights.

    In a stock config the override is one line (the base's ``in_channels``, ``out_channels`` and ``scales``
    are kept)::

        model = dict(type='GuidedEncoderDecoder',
                     neck=dict(type='GuidedMultiLevelNeck', upsampler=dict(type='JAFAR')))

    Args:
        in_channels, out_channels, scales, norm_cfg, act_cfg: as ``MultiLevelNeck``.
        upsampler: upsampler config (its channel argument is filled in; x2-stage methods get the stages of
            the largest scale).
        upsample_inputs: False (default, as ``MultiLevelNeck``): upsample the lateral convs' outputs
            (``out_channels``); True: upsample the backbone's maps before the lateral convs (``in_channels``),
            which is what task-agnostic upsamplers pretrained on that backbone's features expect (JAFAR, AnyUp,
            NAF, LoftUp, FeatUp with released checkpoints).
        share_upsampler: levels with equal channels share one upsampler (one pretrained JAFAR for all ViT
            levels); False builds one per up-scaled level.

    Example:
        >>> import torch
        >>> neck = GuidedMultiLevelNeck([16, 16], 8, scales=[2, 0.5], upsampler=dict(type='Bilinear'))
        >>> feats = GuidedFeatures([torch.randn(1, 16, 8, 8)] * 2, image=torch.randn(1, 3, 128, 128))
        >>> [tuple(x.shape) for x in neck(feats)]
        [(1, 8, 16, 16), (1, 8, 4, 4)]
    """

    def __init__(self, in_channels: Sequence[int], out_channels: int, scales: Sequence[float] = (0.5, 1, 2, 4),
                 norm_cfg: Optional[Dict] = None, act_cfg: Optional[Dict] = None,
                 upsampler: Dict = dict(type='Bilinear'), upsample_inputs: bool = False,
                 share_upsampler: bool = True) -> None:
        super().__init__(list(in_channels), out_channels, list(scales), norm_cfg=norm_cfg, act_cfg=act_cfg)
        if len(self.in_channels) not in (1, self.num_outs):
            raise ValueError(f'GuidedMultiLevelNeck: {len(self.in_channels)} in_channels for {self.num_outs} '
                             'scales; give one input per scale or a single input')
        self.upsample_inputs = upsample_inputs
        width = [self.in_channels[self._source(i)] if upsample_inputs else out_channels for i in range(self.num_outs)]
        up = [s > 1 for s in self.scales]
        self.upsamplers = LevelUpsamplers(type(self).__name__, upsampler, [w if u else None for w, u in zip(width, up)],
                                          [s if u else None for s, u in zip(self.scales, up)], share=share_upsampler)

    def _source(self, level: int) -> int:
        return 0 if len(self.in_channels) == 1 else level

    def init_weights(self) -> None:
        """Xavier for the lateral and output convolutions (as ``MultiLevelNeck``); the upsamplers initialise
        (or load their ``init_cfg`` checkpoints) themselves."""
        for convs in (self.lateral_convs, self.convs):
            for m in convs.modules():
                if isinstance(m, torch.nn.Conv2d):
                    xavier_init(m, distribution='uniform')
        self.upsamplers.init_weights()
        self.load_init_cfg_checkpoint()  # a whole-neck checkpoint of init_cfg, strictly (MultiLevelNeck ignores it)

    def forward(self, inputs: Sequence[torch.Tensor]) -> GuidedFeatures:
        image = check_levels(type(self).__name__, inputs, self.in_channels)
        sources = [inputs[self._source(i)] for i in range(self.num_outs)]
        up_levels = [i for i, s in enumerate(self.scales) if s > 1]
        sizes = {i: scaled_size(sources[i].shape[-2:], self.scales[i]) for i in up_levels}
        lateral = [self.lateral_convs[self._source(i)] for i in range(self.num_outs)]
        if self.upsample_inputs:
            upsampled = self.upsamplers(image, {i: sources[i] for i in up_levels}, sizes)
            maps = [lateral[i](upsampled[i]) if i in upsampled else lateral[i](sources[i])
                    for i in range(self.num_outs)]
        else:
            laterals = [conv(inputs[i]) for i, conv in enumerate(self.lateral_convs)]
            maps = [laterals[self._source(i)] for i in range(self.num_outs)]
            upsampled = self.upsamplers(image, {i: maps[i] for i in up_levels}, sizes)
            maps = [upsampled.get(i, x) for i, x in enumerate(maps)]
        outs = []
        for i, x in enumerate(maps):
            if i not in up_levels:  # down-scales and scale 1: bilinear, as MultiLevelNeck
                x = F.interpolate(x, scale_factor=self.scales[i], mode='bilinear', align_corners=False)
            outs.append(self.convs[i](x))
        return GuidedFeatures(outs, image=image)
