"""SAPA: similarity-aware point affiliation (Lu et al., NeurIPS 2022), stacked image-guided x2 stages."""
from typing import Dict, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from mmjafar.registry import MODELS
from ..layers.checkpoint_checks import check_dim
from ..layers.local_window import local_similarity, local_weighted_sum
from ..layers.resize import resize_features
from ..layers.stages import add_stages, run_stages
from .base import BaseUpsampler


class SAPAStage(nn.Module):
    """One SAPA x``scale`` stage (parameter names of the official module: ``norm_y``, ``norm_x``, ``q``, ``k``).

    Queries come from the fine guidance ``y`` and keys from the coarse features ``x`` (each LayerNorm'd and
    linearly embedded); every fine pixel takes a softmax over the ``k x k`` coarse window around its parent
    pixel and averages the *raw* features of that window. Taps outside the map have logit 0 and value 0, as in
    the official CUDA kernels (so border windows still have ``k*k`` weights summing to one).

    Args:
        channels: feature channels (``dim_x``).
        guidance_channels: guidance channels (``dim_y``; 3 for the image).
        scale: upsampling ratio.
        kernel_size: window size (5).
        embedding_dim: query/key width (64).
    """

    def __init__(self, channels: int, guidance_channels: int = 3, scale: int = 2, kernel_size: int = 5,
                 embedding_dim: int = 64) -> None:
        super().__init__()
        self.scale, self.kernel_size = scale, kernel_size
        self.norm_y = nn.LayerNorm(guidance_channels)
        self.norm_x = nn.LayerNorm(channels)
        self.q = nn.Linear(guidance_channels, embedding_dim)
        self.k = nn.Linear(channels, embedding_dim)
        for linear in (self.q, self.k):
            nn.init.trunc_normal_(linear.weight, std=0.02)
            nn.init.zeros_(linear.bias)

    @staticmethod
    def _embed(x: torch.Tensor, norm: nn.LayerNorm, proj: nn.Linear) -> torch.Tensor:
        return proj(norm(x.permute(0, 2, 3, 1))).permute(0, 3, 1, 2)

    def kernels(self, features: torch.Tensor, guidance: torch.Tensor) -> torch.Tensor:
        """``(B, k*k, s*h, s*w)`` affiliation weights (softmax over each window)."""
        logits = local_similarity(self._embed(guidance, self.norm_y, self.q),
                                  self._embed(features, self.norm_x, self.k), self.kernel_size, padding_mode='zeros')
        return F.softmax(logits, dim=1)

    def forward(self, features: torch.Tensor, guidance: torch.Tensor) -> torch.Tensor:
        """``features (B, C, h, w)``, ``guidance (B, Cy, s*h, s*w)`` -> ``(B, C, s*h, s*w)``."""
        return local_weighted_sum(self.kernels(features, guidance), features, self.kernel_size, padding_mode='zeros')


@MODELS.register_module()
class SAPA(BaseUpsampler):
    """Task-dependent baseline: ``num_stages`` image-guided SAPA x2 stages (x16 by default), then bilinear.

    Stage ``i`` takes the image pooled to its output grid (``adaptive_avg_pool2d``, as FeatUp's SAPA baseline)
    as guidance. The JAFAR evaluation protocol trains it jointly with the probe. The similarity and aggregation
    run in pure PyTorch on every device (the official code needs its CUDA extension).

    Args:
        channels: feature channels.
        num_stages: x2 stages (4: x16).
        kernel_size: affiliation window (5).
        embedding_dim: query/key width (64).
        **kwargs: :class:`BaseUpsampler`'s arguments (output size, scale factor, freezing, checks, init).

    Example:
        >>> import torch
        >>> SAPA(channels=384)(torch.randn(1, 3, 64, 64), torch.randn(1, 384, 4, 4)).shape
        torch.Size([1, 384, 64, 64])
    """

    channels_arg = 'channels'
    stages_arg = 'num_stages'

    def __init__(self, channels: int = 384, num_stages: int = 4, kernel_size: int = 5, embedding_dim: int = 64,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self.channels = channels
        add_stages(self, num_stages, lambda: SAPAStage(channels, 3, 2, kernel_size, embedding_dim))

    def upsample(self, image: torch.Tensor, features: torch.Tensor, output_size: Tuple[int, int]) -> torch.Tensor:
        return resize_features(run_stages(self, features, image, output_size)[-1], output_size)

    def check_checkpoint(self, state_dict: Dict[str, torch.Tensor]) -> None:
        super().check_checkpoint(state_dict)
        check_dim('SAPA', state_dict, 'up1.norm_x.weight', 0, 'channels', self.channels)
