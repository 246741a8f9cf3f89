"""The linear probe of the ADE20K probe hook: BatchNorm + linear classifier on per-pixel feature vectors (torch
only; the mmseg decode head of the same probe is :class:`~mmjafar.models.heads.LinearProbeHead`)."""
import torch
from torch import nn


class PixelProbe(nn.Module):
    """BatchNorm + linear classifier on feature vectors: the 1x1-conv probe applied per pixel.

    Args:
        channels: feature width ``C``.
        num_classes: classes ``K``.

    Example:
        >>> probe = PixelProbe(8, 3).eval()
        >>> tuple(probe(torch.randn(5, 8)).shape), tuple(probe.predict_map(torch.randn(8, 4, 6)).shape)
        ((5, 3), (4, 6))
    """

    def __init__(self, channels: int, num_classes: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm1d(channels)
        self.fc = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C) -> (N, K)``."""
        return self.fc(self.bn(x))

    def predict_map(self, features: torch.Tensor) -> torch.Tensor:
        """``(C, H, W)`` feature map -> ``(H, W)`` class indices."""
        c, h, w = features.shape
        return self(features.reshape(c, h * w).t()).argmax(1).reshape(h, w)
