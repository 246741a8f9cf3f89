"""Axial 2-D RoPE with fixed periods on head-split channels (NAF's image code)."""
import math
from typing import Optional

import torch
from torch import nn

from .rope import rope_rotate


class AxialRoPE2d(nn.Module):
    """Rotary position embedding of an NCHW map, per head, with pixel-centre coordinates in ``[-1, 1]``.

    The ``C`` channels are split into ``num_heads`` heads of ``D = C / num_heads`` channels (head-major). For the
    pixel ``(r, c)`` of an ``H x W`` map, ``u = 2 (r + 0.5) / H - 1`` and ``v = 2 (c + 0.5) / W - 1``; the ``D / 4``
    periods ``p`` give the angles ``2 pi u / p`` and ``2 pi v / p`` (``D / 2`` values, rows first), repeated twice
    to cover the ``D`` channels of a head; channel ``i`` of a head pairs with ``i + D / 2``
    (see :func:`~.rope.rope_rotate`).

    ``periods`` ``(D / 4,)`` is a persistent buffer (part of NAF's checkpoint): ``base ** (2 t / (D / 2))`` at
    construction, but loaded, not recomputed, from checkpoints.

    Args:
        embed_dim: channels of the map (a multiple of ``4 * num_heads``).
        num_heads: heads the channels are split into.
        base: period base.
        rescale_coords: in training mode only, both coordinates are multiplied by one factor drawn log-uniformly
            from ``[1 / rescale_coords, rescale_coords]`` on each call (an augmentation; None disables it).
    """

    def __init__(self, embed_dim: int, num_heads: int, base: float = 100.0,
                 rescale_coords: Optional[float] = None) -> None:
        super().__init__()
        if embed_dim % (4 * num_heads):
            raise ValueError(f'AxialRoPE2d: embed_dim ({embed_dim}) must be a multiple of 4 * num_heads '
                             f'({4 * num_heads})')
        if rescale_coords is not None and rescale_coords < 1:
            raise ValueError(f'AxialRoPE2d: rescale_coords must be >= 1 (or None), got {rescale_coords}')
        self.embed_dim, self.num_heads, self.base = embed_dim, num_heads, base
        self.rescale_coords = rescale_coords
        head_dim = embed_dim // num_heads
        self.register_buffer('periods', base**(2 * torch.arange(head_dim // 4) / (head_dim // 2)), persistent=True)

    def coordinates(self, length: int) -> torch.Tensor:
        """Pixel centres of one axis mapped to ``[-1, 1]``, float32 at least, on the buffer's device."""
        dtype = torch.promote_types(self.periods.dtype, torch.float32)
        return 2.0 * (torch.arange(0.5, length, dtype=dtype, device=self.periods.device) / length) - 1.0

    def angles(self, height: int, width: int) -> torch.Tensor:
        """``(D, H, W)`` angle of every channel of a head at every pixel."""
        rows, cols = self.coordinates(height), self.coordinates(width)
        if self.training and self.rescale_coords is not None:
            log_max = math.log(self.rescale_coords)
            factor = torch.empty((), dtype=rows.dtype, device=rows.device).uniform_(-log_max, log_max).exp()
            rows, cols = rows * factor, cols * factor
        periods = self.periods.to(rows.dtype)
        row_angles = (2 * math.pi * rows)[None, :] / periods[:, None]  # (D/4, H)
        col_angles = (2 * math.pi * cols)[None, :] / periods[:, None]  # (D/4, W)
        quarter = periods.shape[0]
        half = torch.cat([row_angles[:, :, None].expand(quarter, height, width),
                          col_angles[:, None, :].expand(quarter, height, width)])
        return torch.cat([half, half])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W) -> (B, C, H, W)``."""
        b, c, h, w = x.shape
        if c != self.embed_dim:
            raise ValueError(f'AxialRoPE2d built for {self.embed_dim} channels got {c}')
        angle = self.angles(h, w)
        heads = x.view(b, self.num_heads, c // self.num_heads, h, w)
        out = rope_rotate(heads, angle.cos().to(x.dtype), angle.sin().to(x.dtype), dim=2)
        return out.view(b, c, h, w)

    def extra_repr(self) -> str:
        return f'embed_dim={self.embed_dim}, num_heads={self.num_heads}, base={self.base}'
