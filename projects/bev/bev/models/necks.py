"""Trainable image neck of the BEV models (design brief §2): ``2 × [conv3×3 C→C + InstanceNorm + ReLU]`` then a
1×1 projection to the BEV width (128)."""
import torch
from mmengine.model import BaseModule
from torch import nn

from mmjafar.registry import MODELS


def conv_in_act(in_channels: int, out_channels: int, act: type = nn.ReLU) -> nn.Sequential:
    """``conv3×3 (no bias) -> InstanceNorm2d (affine) -> act``, the building block of the necks and heads."""
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
                         nn.InstanceNorm2d(out_channels, affine=True), act(inplace=True) if act is nn.ReLU else act())


@MODELS.register_module()
class BEVImageNeck(BaseModule):
    """Per-camera neck turning (upsampled) backbone features into the view transform's input.

    ``(B·N, in_channels, h, w) -> (B·N, out_channels, h, w)``; works at any resolution (instance norm over each
    camera's map, no batch statistics, so batch 1 per GPU is fine).

    Args:
        in_channels: backbone channels (384 for ViT-S/14, 768 for ViT-B).
        out_channels: channels handed to the view transform (128).
        num_convs: number of 3×3 blocks at ``in_channels`` before the projection (2).
        init_cfg: mmengine init config.
    """

    def __init__(self, in_channels: int = 384, out_channels: int = 128, num_convs: int = 2, init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        if in_channels <= 0 or out_channels <= 0 or num_convs < 0:
            raise ValueError(f'BEVImageNeck: channels must be positive and num_convs >= 0, got in_channels='
                             f'{in_channels}, out_channels={out_channels}, num_convs={num_convs}')
        self.in_channels, self.out_channels = in_channels, out_channels
        self.convs = nn.Sequential(*[conv_in_act(in_channels, in_channels) for _ in range(num_convs)])
        self.proj = nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f'BEVImageNeck: expected (B*N, {self.in_channels}, h, w) features, got '
                             f'{tuple(x.shape)}; set neck.in_channels to the backbone\'s embed_dim')
        return self.proj(self.convs(x))
