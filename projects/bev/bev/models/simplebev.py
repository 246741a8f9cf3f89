"""``SimpleBEV``: dense lifting + ResNet-18 UNet (Harley et al., 2023), with the shared image branch and
PointBeV's losses (design brief §2)::

    img feats (B, N, 128, h, w) ── DenseLifting ──> (B, 128, Z, R, C) ── reshape ──> (B, 128·Z, R, C)
        ── conv3×3 -> 128 + InstanceNorm + GELU ── ResNetUNet ── BEVHead (seg, centerness, offset)
"""
from typing import Dict

import torch
from torch import nn

from mmjafar.registry import MODELS
from .segmentor import BEVSegmentor


@MODELS.register_module()
class SimpleBEV(BEVSegmentor):
    """SimpleBEV for BEV vehicle segmentation.

    Args:
        bev_channels: width of the BEV map after height compression (128).
        **kwargs: the arguments of :class:`BEVSegmentor`, with these defaults: ``view_transform`` the lifting
            ``dict(type='DenseLifting')`` (gets the model's grid), ``bev_encoder`` the BEV network
            ``dict(type='ResNetUNet', in_channels=128)`` (None goes straight to the head).
    """

    def __init__(self, bev_channels: int = 128, **kwargs) -> None:
        kwargs.setdefault('view_transform', dict(type='DenseLifting'))
        kwargs.setdefault('bev_encoder', dict(type='ResNetUNet', in_channels=128))
        super().__init__(**kwargs)
        lifted = self.img_branch.out_channels * self.grid.num_heights
        self.compressor = nn.Sequential(nn.Conv2d(lifted, bev_channels, 3, padding=1, bias=False),
                                        nn.InstanceNorm2d(bev_channels, affine=True), nn.GELU())

    def bev_forward(self, img_feats: torch.Tensor, inputs: dict) -> Dict[str, torch.Tensor]:
        voxels = self.view_transform(img_feats, inputs)         # (B, C, Z, R, C')
        bev = self.compressor(voxels.flatten(1, 2))              # (B, bev_channels, R, C')
        if self.bev_encoder is not None:
            bev = self.bev_encoder(bev)
        return self.head(bev)
