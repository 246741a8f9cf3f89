"""Dense BEV heads (design brief §2): one ``conv3×3 + InstanceNorm + ReLU + conv1×1`` branch per output."""
from typing import Dict, Mapping, Optional

import torch
from mmengine.model import BaseModule
from torch import nn

from mmjafar.registry import MODELS
from .necks import conv_in_act

DEFAULT_OUTPUTS = {'seg': 1, 'centerness': 1, 'offset': 2}


@MODELS.register_module()
class BEVHead(BaseModule):
    """Segmentation, centerness and offset heads on a BEV feature map.

    ``forward((B, C, R, C')) -> dict(seg=(B, 1, R, C') logits, centerness=(B, 1, R, C') logits,
    offset=(B, 2, R, C'))``. Centerness is trained on its sigmoid (see :class:`BEVLoss`); offsets are raw
    cell -> instance-centre vectors in cells.

    Args:
        in_channels: BEV feature channels (128).
        mid_channels: width of each branch's 3×3 block (``in_channels`` when None).
        outputs: name -> channel count of each branch; must contain ``seg``.
        seg_bias_init: initial bias of the segmentation logit (0 keeps PyTorch's default initialisation).
        init_cfg: mmengine init config.
    """

    def __init__(self, in_channels: int = 128, mid_channels: Optional[int] = None,
                 outputs: Mapping[str, int] = DEFAULT_OUTPUTS, seg_bias_init: float = 0.0, init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        if 'seg' not in outputs:
            raise ValueError(f'BEVHead: outputs must include "seg", got {sorted(outputs)}')
        mid = mid_channels or in_channels
        self.in_channels = in_channels
        self.branches = nn.ModuleDict({
            name: nn.Sequential(conv_in_act(in_channels, mid), nn.Conv2d(mid, int(ch), 1))
            for name, ch in outputs.items()})
        if seg_bias_init:
            nn.init.constant_(self.branches['seg'][-1].bias, seg_bias_init)

    def forward(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f'BEVHead: expected (B, {self.in_channels}, R, C) BEV features, got {tuple(x.shape)}')
        return {name: branch(x) for name, branch in self.branches.items()}
