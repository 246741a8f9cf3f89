"""Spatial feature transform (SFT) modulation."""
import torch
from torch import nn


class SFTModulation(nn.Module):
    """``gamma(cond) * GroupNorm(x) + beta(cond)`` with bias-free convolutional ``gamma`` and ``beta``.

    Args:
        in_channels: channels of the conditioning map ``cond`` (and of ``x``).
        out_channels: channels of ``gamma`` / ``beta``.
        kernel_size: kernel of the two projections.
        num_groups: groups of the affine-free GroupNorm on ``x``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 1, num_groups: int = 8) -> None:
        super().__init__()
        self.gamma = nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False)
        self.beta = nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False)
        self.norm = nn.GroupNorm(num_groups, in_channels, affine=False)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        return self.gamma(cond) * self.norm(x) + self.beta(cond)
