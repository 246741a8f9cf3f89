"""One upsampler per channel count of a feature pyramid, built from one template config (torch + mmengine only)."""
import copy
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch import nn

from mmjafar.registry import MODELS
from mmjafar.structures import GuidedFeatures
from ..layers.stages import stages_for
from ..upsamplers.base import BaseUpsampler


class LevelUpsamplers(nn.Module):
    """The upsamplers of a multi-level neck: one per channel count (shared) or one per level.

    Each is built from ``template`` with its channel count filled in (the method's ``channels_arg``, e.g.
    ``v_dim`` for JAFAR, ``channels`` for CARAFE) and, for methods made of x2 stages (``stages_arg``), just enough
    stages for the largest up-scale it serves. :meth:`forward` calls each upsampler once with all of its levels
    (:meth:`~mmjafar.models.upsamplers.BaseUpsampler.forward_many`), so the guidance image is encoded once per
    upsampler and forward pass, whatever the number of levels and output sizes.

    Args:
        owner: name of the neck, for error messages.
        template: upsampler config, e.g. ``dict(type='JAFAR', init_cfg=dict(type='Pretrained', checkpoint=...))``.
        channels: feature channels of each level that is upsampled (None for levels that are not).
        ratios: the up-scale of each upsampled level (None for the others), for the stage count.
        share: levels with equal channel counts share one upsampler (one pretrained JAFAR for all ViT levels;
            one AnyUp or NAF for every level, as they take any channel count); False builds one per level.
    """

    def __init__(self, owner: str, template: Dict, channels: Sequence[Optional[int]],
                 ratios: Sequence[Optional[float]], share: bool = True) -> None:
        super().__init__()
        if not isinstance(template, dict) or 'type' not in template:
            raise TypeError(f'{owner}: upsampler must be a config dict with a type, e.g. dict(type=\'JAFAR\'), '
                            f'got {template!r}')
        self.owner = owner
        cls = MODELS.get(template['type'])
        if cls is None:
            raise KeyError(f'{owner}: upsampler type {template["type"]!r} is not registered; '
                           'add custom_imports=dict(imports=[\'mmjafar\']) to the config')
        if not (isinstance(cls, type) and issubclass(cls, BaseUpsampler)):
            raise TypeError(f'{owner}: upsampler type {template["type"]!r} is not a BaseUpsampler')
        groups: Dict[object, List[int]] = {}
        for level, ch in enumerate(channels):
            if ch is not None:  # methods that take any channel count share one module across all widths
                groups.setdefault((ch if cls.channels_arg else 'any') if share else level, []).append(level)
        #: the upsampler index of each level (None: the level is not upsampled by this module)
        self.level_to_index: List[Optional[int]] = [None] * len(channels)
        ups = []
        for index, levels in enumerate(groups.values()):
            cfg = copy.deepcopy(template)
            arg, width = cls.channels_arg, channels[levels[0]]
            if arg is not None:
                if arg in cfg and cfg[arg] != width:
                    raise ValueError(f'{owner}: the upsampler config sets {arg}={cfg[arg]} but level {levels[0]} '
                                     f'has {width} channels (in_channels); leave {arg} out of the config, the '
                                     'neck fills it in per level')
                cfg[arg] = width
            stages_arg = getattr(cls, 'stages_arg', None)
            if stages_arg is not None and stages_arg not in cfg:
                cfg[stages_arg] = stages_for(max(ratios[i] for i in levels))
            ups.append(MODELS.build(cfg))
            for level in levels:
                self.level_to_index[level] = index
        self.upsamplers = nn.ModuleList(ups)
        self.uses_image = any(up.uses_image for up in ups)

    def init_weights(self) -> None:
        """Initialise (or load the ``init_cfg`` checkpoint of) every upsampler; an ``nn.Module`` child without this
        method would be skipped by the owning neck's ``BaseModule.init_weights``."""
        for up in self.upsamplers:
            up.init_weights()

    def forward(self, image: Optional[torch.Tensor], maps: Dict[int, torch.Tensor],
                sizes: Dict[int, Tuple[int, int]]) -> Dict[int, torch.Tensor]:
        """``{level: (B, C, h, w)}``, ``{level: (H, W)}`` -> ``{level: (B, C, H, W)}``."""
        if image is None and self.uses_image:
            raise ValueError(f'{self.owner}: the upsamplers need the guidance image but the neck got plain '
                             'features; set model type=\'GuidedEncoderDecoder\' (it hands the image to the neck)')
        by_index: Dict[int, List[int]] = {}
        for level in maps:
            by_index.setdefault(self.level_to_index[level], []).append(level)
        outs = {}
        for index, levels in by_index.items():
            results = self.upsamplers[index].forward_many(image, [maps[i] for i in levels],
                                                          [sizes[i] for i in levels])
            outs.update(zip(levels, results))
        return outs


def check_levels(owner: str, inputs: Sequence[torch.Tensor], in_channels: Sequence[int]) -> Optional[torch.Tensor]:
    """Validate the neck input against ``in_channels``; returns the guidance image (None if the input has none)."""
    if not isinstance(inputs, (tuple, list)):
        raise TypeError(f'{owner}: expected the tuple of backbone maps, got {type(inputs).__name__}')
    if len(inputs) != len(in_channels):
        raise ValueError(f'{owner}: got {len(inputs)} feature maps but in_channels lists {len(in_channels)} '
                         f'({list(in_channels)}); match in_channels to the backbone\'s out_indices')
    for level, (x, ch) in enumerate(zip(inputs, in_channels)):
        if x.dim() != 4 or x.shape[1] != ch:
            raise ValueError(f'{owner}: level {level} has shape {tuple(x.shape)} but in_channels[{level}] = {ch}; '
                             'set in_channels to the backbone\'s output channels')
    return inputs.image if isinstance(inputs, GuidedFeatures) else None
