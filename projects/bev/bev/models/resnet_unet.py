"""``ResNetUNet``: SimpleBEV's BEV network (design brief §2), a ResNet-18 trunk with three add-skip up blocks.

::

    x (B, C, R, C') ── 7×7/2 conv -> 64, BN, ReLU ── layer1 (64, 1/2) ── layer2 (128, 1/4)
        ── layer3 (256, 1/8)
    up: layer3 -> ×2 -> 1×1 -> 128 -> IN (+ layer2) -> ×2 -> 1×1 -> 64 -> IN (+ layer1) -> ×2 -> 1×1 -> C -> IN (+ x)

The residual stages are torchvision's ``resnet18`` layers, randomly initialised (no download). The upsampling
is bilinear (``align_corners=False``) to the skip's exact size, so odd grids (e.g. 50×50 -> 25 -> 13 -> 7) work;
for grids divisible by 8 it is exactly ×2.
"""
import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import nn

from mmjafar.registry import MODELS


class UpAdd(nn.Module):
    """Bilinear upsampling to the skip's size, 1×1 conv (no bias), InstanceNorm, then ``+ skip``."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        self.norm = nn.InstanceNorm2d(out_channels, affine=True)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, size=skip.shape[-2:], mode='bilinear', align_corners=False)
        return self.norm(self.conv(x)) + skip


@MODELS.register_module()
class ResNetUNet(BaseModule):
    """SimpleBEV's ResNet-18 UNet on a BEV map: ``(B, C, R, C') -> (B, C, R, C')``.

    Args:
        in_channels: channels of the input and of the output (128).
        init_cfg: mmengine init config.
    """

    def __init__(self, in_channels: int = 128, init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        from torchvision.models import resnet18
        trunk = resnet18(weights=None)
        self.in_channels = in_channels
        self.stem = nn.Sequential(nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False),
                                  nn.BatchNorm2d(64), nn.ReLU(inplace=True))
        self.layer1, self.layer2, self.layer3 = trunk.layer1, trunk.layer2, trunk.layer3
        self.up3 = UpAdd(256, 128)
        self.up2 = UpAdd(128, 64)
        self.up1 = UpAdd(64, in_channels)

    @property
    def out_channels(self) -> int:
        return self.in_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f'ResNetUNet: expected (B, {self.in_channels}, R, C) BEV features, got '
                             f'{tuple(x.shape)}')
        s1 = self.layer1(self.stem(x))
        s2 = self.layer2(s1)
        s3 = self.layer3(s2)
        y = self.up3(s3, s2)
        y = self.up2(y, s1)
        return self.up1(y, x)
