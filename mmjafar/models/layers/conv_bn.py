"""``Conv2d -> BatchNorm2d -> ReLU`` triples, the building block of LiFT's and LoftUp's convolutional branches."""
from typing import List

from torch import nn


def conv_bn_relu(in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1,
                 bias: bool = True) -> List[nn.Module]:
    """``[Conv2d(k, stride, padding=k//2), BatchNorm2d, ReLU]`` as a list, to splice into an ``nn.Sequential``.

    Returned as a list (not a Sequential) so that stacks of them keep the flat indices (0, 1, 3, 4, ...) of the
    official checkpoints.
    """
    return [
        nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=kernel_size // 2, bias=bias),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    ]
