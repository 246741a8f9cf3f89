"""Convolutional building blocks of the JAFAR-family image and feature encoders."""
import torch
import torch.nn.functional as F
from torch import nn


class ResBlock(nn.Module):
    """Pre-activation residual block: ``x + conv2(act(norm2(conv1(act(norm1(x))))))``.

    Parameter names (``norm1``, ``conv1``, ``norm2``, ``conv2``, ``shortcut``) follow the official JAFAR code so
    its checkpoints load unchanged. Convolutions have no bias; padding keeps the spatial size.

    Args:
        in_channels: input channels.
        out_channels: output channels (a 1x1 ``shortcut`` projection is added when they differ).
        kernel_size: kernel of both convolutions.
        num_groups: groups of the two GroupNorms.
        pad_mode: ``padding_mode`` of the convolutions ('zeros', 'reflect', ...).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 1, num_groups: int = 8,
                 pad_mode: str = 'reflect') -> None:
        super().__init__()
        pad = kernel_size // 2
        self.norm1 = nn.GroupNorm(num_groups, in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size, padding=pad, padding_mode=pad_mode,
                               bias=False)
        self.norm2 = nn.GroupNorm(num_groups, out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, kernel_size, padding=pad, padding_mode=pad_mode,
                               bias=False)
        self.activation_fn = nn.SiLU()
        if in_channels != out_channels:
            self.shortcut = nn.Conv2d(in_channels, out_channels, 1, bias=False)

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut(x) if hasattr(self, 'shortcut') else x

    def branch_before_conv2(self, x: torch.Tensor) -> torch.Tensor:
        """The residual branch up to (not including) ``conv2``."""
        return self.activation_fn(self.norm2(self.conv1(self.activation_fn(self.norm1(x)))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(self.branch_before_conv2(x)) + self.residual(x)


def make_encoder(in_channels: int, channels: int, kernel_size: int = 1, num_blocks: int = 2,
                 num_groups: int = 8) -> nn.Sequential:
    """``Conv(in -> channels, k, reflect, no bias)`` followed by ``num_blocks`` 1x1 :class:`ResBlock` s.

    The layout (indices 0, 1, 2, ...) is the official JAFAR/AnyUp encoder's, so state-dict keys match.
    """
    return nn.Sequential(
        nn.Conv2d(in_channels, channels, kernel_size, padding=kernel_size // 2, padding_mode='reflect',
                  bias=False),
        *[ResBlock(channels, channels, kernel_size=1, num_groups=num_groups) for _ in range(num_blocks)])


def encode_and_pool(encoder: nn.Sequential, x: torch.Tensor, size) -> torch.Tensor:
    """``adaptive_avg_pool2d(encoder(x), size)`` with less work at full resolution.

    When the encoder ends in a :class:`ResBlock` with a 1x1 ``conv2``, average pooling commutes with that
    linear convolution: ``pool(conv2(a) + r) = conv2(pool(a)) + pool(r)``. The last convolution then runs on
    the pooled grid instead of the full-resolution one (the same math; float rounding differs at 1e-7).
    """
    *body, last = encoder
    for layer in body:
        x = layer(x)
    if not (isinstance(last, ResBlock) and last.conv2.kernel_size == (1, 1)):
        return F.adaptive_avg_pool2d(last(x), size)
    branch = F.adaptive_avg_pool2d(last.branch_before_conv2(x), size)
    return last.conv2(branch) + F.adaptive_avg_pool2d(last.residual(x), size)
