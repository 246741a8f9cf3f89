"""PointBeV's voxel coordinate embedding: normalised 3-D coordinates -> Fourier features -> MLP.

Each lifted voxel feature gets ``embed(p / (1.2 * bound))`` added before height compression, where ``p`` is the
ego-frame point that was projected into the cameras (after the BEV augmentation) and ``bound`` the largest
absolute extent of the grid along each axis (the factor 1.2 keeps augmented points inside ``[-1, 1]``).

Fourier features (NeRF style): ``sin(2 pi f_k x)`` and ``cos(2 pi f_k x)`` for every coordinate and the
frequencies ``f_k = 2^(k - 1)``, ``k = 0 .. n_freqs - 1`` (``3 * 2 * 8 = 48`` dims by default). The image-side
:class:`mmjafar.models.layers.fourier.FourierFeatures` (FeatUp's learned-phase pixel embedding) is not reused:
it embeds a pixel lattice, not a list of 3-D points.
"""
from typing import Sequence

import torch
from torch import nn

from mmjafar.registry import MODELS
from ..geometry import BEVGrid


def coordinate_bounds(grid: BEVGrid, margin: float = 1.2) -> torch.Tensor:
    """``(3,)`` per-axis normaliser ``margin * max |extent|`` of the grid (x, y from the ranges, z from the
    height centres)."""
    return torch.tensor([margin * max(abs(v) for v in grid.x_range),
                         margin * max(abs(v) for v in grid.y_range),
                         margin * max(abs(v) for v in grid.z_centers) or margin], dtype=torch.float32)


def fourier_encode(coords: torch.Tensor, freqs: torch.Tensor) -> torch.Tensor:
    """``(..., D)`` coordinates -> ``(..., 2 * D * F)`` ``[sin(2 pi f x), cos(2 pi f x)]`` (coordinate-major)."""
    args = (2 * torch.pi) * coords.unsqueeze(-1) * freqs                  # (..., D, F)
    return torch.cat([torch.sin(args), torch.cos(args)], dim=-1).flatten(-2)


@MODELS.register_module()
class FourierCoordEmbedding(nn.Module):
    """Embed normalised 3-D coordinates: Fourier features followed by an MLP with GELU.

    ``(..., in_dims) -> (..., out_channels)``. Default: 3 coordinates, 8 frequencies (48 features), two hidden
    layers of width 256, 128 outputs (PointBeV's setting).

    Args:
        in_dims: number of coordinates per point.
        num_freqs: frequencies ``2^(k - 1)``, ``k = 0 .. num_freqs - 1``.
        hidden_channels: width of the hidden layers.
        num_hidden: number of hidden layers (``num_hidden + 1`` linear layers in all).
        out_channels: embedding size (the lifted feature size it is added to).
    """

    def __init__(self, in_dims: int = 3, num_freqs: int = 8, hidden_channels: int = 256, num_hidden: int = 2,
                 out_channels: int = 128) -> None:
        super().__init__()
        if min(in_dims, num_freqs, hidden_channels, out_channels) < 1 or num_hidden < 0:
            raise ValueError('FourierCoordEmbedding: in_dims, num_freqs, hidden_channels and out_channels must be '
                             f'positive and num_hidden >= 0, got {in_dims}, {num_freqs}, {hidden_channels}, '
                             f'{out_channels}, {num_hidden}')
        self.in_dims = in_dims
        self.register_buffer('freqs', 2.0 ** (torch.arange(num_freqs, dtype=torch.float32) - 1), persistent=False)
        widths: Sequence[int] = [2 * in_dims * num_freqs] + [hidden_channels] * num_hidden
        layers = []
        for width_in, width_out in zip(widths[:-1], widths[1:]):
            layers += [nn.Linear(width_in, width_out), nn.GELU()]
        layers.append(nn.Linear(widths[-1], out_channels))
        self.mlp = nn.Sequential(*layers)

    @property
    def num_fourier(self) -> int:
        return 2 * self.in_dims * self.freqs.numel()

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        """``(..., in_dims)`` normalised coordinates (about ``[-1, 1]``) -> ``(..., out_channels)``."""
        if coords.shape[-1] != self.in_dims:
            raise ValueError(f'FourierCoordEmbedding: expected (..., {self.in_dims}) coordinates, got '
                             f'{tuple(coords.shape)}')
        return self.mlp(fourier_encode(coords, self.freqs.to(coords.dtype)))
