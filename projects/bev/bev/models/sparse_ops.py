"""Sparse operations of PointBeV in pure PyTorch: bilinear sampling at selected points and BEV cell selection.

* :func:`sparse_grid_sample` samples a batch of feature maps at an arbitrary list of points, each tagged with the
  map it reads from. It is the CPU/GPU fallback of PointBeV's ``sparse_gs`` CUDA extension: the four neighbours of
  every point are gathered by flat index and mixed with their bilinear weights (``torch.embedding_bag`` with
  per-sample weights, so no ``(4 * M, C)`` intermediate is materialised). Cost ``O(M * C)`` in time and memory,
  independent of how many points a dense ``grid_sample`` would have wasted on invalid locations. Semantics are
  those of ``F.grid_sample(mode='bilinear', padding_mode='zeros', align_corners=False)``.
* :func:`random_cells`, :func:`select_fine_cells` and :func:`cells_to_mask` implement the two-pass selection of
  PointBeV training: random coarse pillars, then the neighbourhoods of the most confident coarse cells.

Selections are flat cell indices ``r * cols + c`` into a ``(rows, cols)`` BEV grid, one row of indices per
sample (the same count for every sample, so they batch as a ``(B, P)`` long tensor).
"""
from typing import Optional, Tuple

import torch
import torch.nn.functional as F


def sparse_grid_sample(features: torch.Tensor, grid: torch.Tensor, map_index: torch.Tensor) -> torch.Tensor:
    """Bilinearly sample ``features[map_index[m]]`` at ``grid[m]`` for every point ``m``.

    Equals ``F.grid_sample(features[map_index[m]][None], grid[m].view(1, 1, 1, 2), align_corners=False)`` with
    zeros padding, point by point. Gradients flow to ``features`` (not to ``grid``).

    Args:
        features: ``(K, C, H, W)`` feature maps.
        grid: ``(M, 2)`` sampling locations as ``(x, y)`` in ``[-1, 1]`` (``-1`` = left/top edge of the map, the
            ``grid_sample(align_corners=False)`` convention used by ``geometry.project_to_cameras``).
        map_index: ``(M,)`` integer index in ``[0, K)`` of the map each point reads.

    Returns:
        ``(M, C)`` sampled features (zero contribution from neighbours outside the map).
    """
    if features.dim() != 4:
        raise ValueError(f'sparse_grid_sample: features must be (K, C, H, W), got {tuple(features.shape)}')
    if grid.dim() != 2 or grid.shape[-1] != 2:
        raise ValueError(f'sparse_grid_sample: grid must be (M, 2) (x, y) locations, got {tuple(grid.shape)}')
    if map_index.shape != grid.shape[:1]:
        raise ValueError(f'sparse_grid_sample: map_index must be (M,) = {tuple(grid.shape[:1])}, got '
                         f'{tuple(map_index.shape)}')
    num_maps, channels, height, width = features.shape
    if grid.shape[0] == 0:
        return features.new_zeros(0, channels)
    grid = grid.detach()
    if grid.dtype not in (torch.float32, torch.float64):
        grid = grid.float()
    # align_corners=False: pixel centres at integer coordinates, the map spans [-0.5, size - 0.5]
    x = ((grid[:, 0] + 1.0) * width - 1.0) * 0.5
    y = ((grid[:, 1] + 1.0) * height - 1.0) * 0.5
    x0 = torch.floor(x)
    y0 = torch.floor(y)
    wx1, wy1 = x - x0, y - y0
    wx0, wy0 = 1.0 - wx1, 1.0 - wy1
    x0, y0 = x0.long(), y0.long()
    xs = torch.stack([x0, x0 + 1, x0, x0 + 1], dim=1)                       # (M, 4) corners: tl, tr, bl, br
    ys = torch.stack([y0, y0, y0 + 1, y0 + 1], dim=1)
    weights = torch.stack([wx0 * wy0, wx1 * wy0, wx0 * wy1, wx1 * wy1], dim=1)
    inside = (xs >= 0) & (xs < width) & (ys >= 0) & (ys < height)
    weights = torch.where(inside, weights, torch.zeros_like(weights)).to(features.dtype)
    base = map_index.to(torch.long).view(-1, 1) * (height * width)
    flat = base + ys.clamp(0, height - 1) * width + xs.clamp(0, width - 1)
    table = features.permute(0, 2, 3, 1).reshape(num_maps * height * width, channels)
    return F.embedding_bag(flat, table, per_sample_weights=weights, mode='sum')


def random_cells(batch_size: int, num_cells: int, count: int, device=None,
                 generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """``(B, count)`` distinct random flat cell indices per sample (sampling without replacement).

    Args:
        batch_size: number of samples B.
        num_cells: number of cells of the grid (``rows * cols``).
        count: cells per sample; must be in ``[1, num_cells]``.
        generator: optional ``torch.Generator`` for reproducible draws (on the CPU).
    """
    if not 0 < count <= num_cells:
        raise ValueError(f'random_cells: count must be in [1, {num_cells}] (the grid size), got {count}')
    noise = torch.rand(batch_size, num_cells, generator=generator)
    return noise.topk(count, dim=1).indices.to(device)


def cells_to_mask(cells: torch.Tensor, shape: Tuple[int, int]) -> torch.Tensor:
    """Flat cell indices ``(B, P)`` -> boolean mask ``(B, 1, rows, cols)`` of the selected cells."""
    rows, cols = shape
    mask = torch.zeros(cells.shape[0], rows * cols, dtype=torch.bool, device=cells.device)
    mask.scatter_(1, cells, torch.ones_like(cells, dtype=torch.bool))  # tensor src: jit-traceable
    return mask.view(-1, 1, rows, cols)


def dilate_mask(mask: torch.Tensor, kernel_size: int) -> torch.Tensor:
    """Boolean ``(B, 1, R, C)`` mask grown by a ``kernel_size`` × ``kernel_size`` square (odd size)."""
    if kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f'dilate_mask: kernel_size must be a positive odd number, got {kernel_size}')
    if kernel_size == 1:
        return mask
    grown = F.max_pool2d(mask.float(), kernel_size, stride=1, padding=kernel_size // 2)
    return grown > 0


@torch.no_grad()
def select_fine_cells(scores: torch.Tensor, mask: torch.Tensor, num_anchors: int, kernel_size: int,
                      budget: int, generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """PointBeV's fine selection: the ``num_anchors`` highest-scoring predicted cells, dilated by a square
    ``kernel_size`` window, then capped or filled to exactly ``budget`` cells per sample.

    Capping keeps the dilated cells nearest (in score) to the strongest anchors: each dilated cell is ranked by the
    highest anchor score within its window (ties broken at random). Filling adds random cells outside the dilated
    region. No gradient flows through the selection.

    Args:
        scores: ``(B, 1, R, C)`` scores (e.g. coarse sigmoid probabilities); only cells with ``mask`` compete.
        mask: ``(B, 1, R, C)`` bool, cells that carry a coarse prediction.
        num_anchors: anchors per sample (clamped to the grid size).
        kernel_size: odd side of the dilation window (9 in PointBeV's paper, 7 in its released run).
        budget: cells returned per sample, in ``[1, R * C]``.
        generator: optional CPU ``torch.Generator`` for the random tie-breaks and fill.

    Returns:
        ``(B, budget)`` long flat cell indices (distinct within each sample).
    """
    if scores.dim() != 4 or scores.shape[1] != 1 or mask.shape != scores.shape:
        raise ValueError(f'select_fine_cells: scores and mask must both be (B, 1, R, C), got '
                         f'{tuple(scores.shape)} and {tuple(mask.shape)}')
    batch_size, _, rows, cols = scores.shape
    num_cells = rows * cols
    if not 0 < budget <= num_cells:
        raise ValueError(f'select_fine_cells: budget must be in [1, {num_cells}] (the grid size), got {budget}')
    if num_anchors < 1:
        raise ValueError(f'select_fine_cells: num_anchors must be >= 1, got {num_anchors}')
    if kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f'select_fine_cells: kernel_size must be a positive odd number, got {kernel_size}')
    # scores in [0, 1] are shifted to [1, 2] so that every predicted cell outranks unpredicted ones (value 0)
    flat = torch.where(mask, scores.float().clamp(0, 1) + 1.0, torch.zeros_like(scores, dtype=torch.float)).flatten(1)
    anchors = flat.topk(min(num_anchors, num_cells), dim=1).indices
    anchor_scores = torch.zeros_like(flat).scatter_(1, anchors, flat.gather(1, anchors)).view_as(scores)
    # dilated cells get the best anchor score in their window: in [1, 2]; all others stay 0
    reach = F.max_pool2d(anchor_scores, kernel_size, stride=1, padding=kernel_size // 2).flatten(1)
    noise = torch.rand(batch_size, num_cells, generator=generator).to(flat.device)
    # priority: dilated cells (>= 2 + tie-break) before random fill cells (< 1)
    priority = torch.where(reach > 0, reach + 1.0 + 1e-3 * noise, noise)
    return priority.topk(budget, dim=1).indices
