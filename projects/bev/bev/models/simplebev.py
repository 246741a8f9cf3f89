"""``SimpleBEV``: dense lifting + ResNet-18 UNet (Harley et al., 2023), with the shared image branch and
PointBeV's losses (design brief §2)::

    img feats (B, N, 128, h, w) ── DenseLifting ──> (B, 128, Z, R, C) ── reshape ──> (B, 128·Z, R, C)
        ── conv3×3 -> 128 + InstanceNorm + GELU ── ResNetUNet ── BEVHead (seg, centerness, offset)
"""
from typing import Dict, Optional

import torch
from torch import nn

from mmjafar.registry import MODELS
from .image_branch import ConfigOrModule
from .segmentor import BEVSegmentor


@MODELS.register_module()
class SimpleBEV(BEVSegmentor):
    """SimpleBEV for BEV vehicle segmentation.

    Args:
        bev_channels: width of the BEV map after height compression (128).
        view_transform: the lifting (``DenseLifting`` by default; gets the model's grid).
        bev_encoder: the BEV network (``ResNetUNet`` by default; None goes straight to the head).
        other arguments: see :class:`BEVSegmentor`.
    """

    def __init__(self, backbone: ConfigOrModule, neck: ConfigOrModule, head: ConfigOrModule,
                 upsampler: ConfigOrModule = None, target_stride: float = 8, bev_channels: int = 128,
                 view_transform: ConfigOrModule = dict(type='DenseLifting'),
                 bev_encoder: ConfigOrModule = dict(type='ResNetUNet', in_channels=128),
                 grid: Optional[dict] = None, loss: ConfigOrModule = dict(type='BEVLoss'),
                 data_preprocessor: Optional[dict] = dict(type='BEVDataPreprocessor'), init_cfg=None) -> None:
        super().__init__(backbone=backbone, neck=neck, head=head, upsampler=upsampler, target_stride=target_stride,
                         view_transform=view_transform, bev_encoder=bev_encoder, grid=grid, loss=loss,
                         data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        lifted = self.img_branch.out_channels * self.grid.num_heights
        self.compressor = nn.Sequential(nn.Conv2d(lifted, bev_channels, 3, padding=1, bias=False),
                                        nn.InstanceNorm2d(bev_channels, affine=True), nn.GELU())

    def bev_forward(self, img_feats: torch.Tensor, inputs: dict) -> Dict[str, torch.Tensor]:
        voxels = self.view_transform(img_feats, inputs)         # (B, C, Z, R, C')
        bev = self.compressor(voxels.flatten(1, 2))              # (B, bev_channels, R, C')
        if self.bev_encoder is not None:
            bev = self.bev_encoder(bev)
        return self.head(bev)
