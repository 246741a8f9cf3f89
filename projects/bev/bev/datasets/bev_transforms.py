"""BEV augmentation and vehicle GT rasterisation (design brief §1).

Rasterisation follows the references: each ground polygon's corners map to continuous ``(col, row)`` cell
coordinates (``BEVGrid.ego_to_cell``: cell ``r`` spans ``[r, r + 1)``), are rounded, and filled with
``cv2.fillPoly`` (boundary cells included). Later boxes overwrite earlier ones.
"""
from typing import Dict, Mapping, Optional, Sequence, Union

import cv2
import numpy as np
from mmcv.transforms import BaseTransform

from mmjafar.registry import TRANSFORMS
from ..geometry import BEVGrid
from ..structures import IGNORE_OFFSET

BACKGROUND = 255


def _rigid_z(yaw: float, translation: Sequence[float]) -> np.ndarray:
    c, s = np.cos(yaw), np.sin(yaw)
    mat = np.eye(4)
    mat[:2, :2] = [[c, -s], [s, c]]
    mat[:3, 3] = translation
    return mat


def transform_xy(xy: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a 4×4 rigid transform to ``(..., 2)`` ground points (z = 0)."""
    xy = np.asarray(xy, dtype=np.float64)
    return xy @ matrix[:2, :2].T + matrix[:2, 3]


def rasterize_bev_targets(grid: BEVGrid, polygons: np.ndarray, centers: np.ndarray, visibility: np.ndarray,
                          min_visibility: int = 2, sigma: float = 3.0,
                          invisible_threshold: float = 0.1) -> Dict[str, np.ndarray]:
    """Vehicle targets on ``grid`` from ego-frame boxes.

    Args:
        grid: the BEV grid.
        polygons: ``(M, 4, 2)`` ground corners (x, y) in the (augmented) ego frame.
        centers: ``(M, 2)`` box centres (x, y).
        visibility: ``(M,)`` levels 1..4.
        min_visibility: boxes below this level are *invisible*: their cells are not ``valid``.
        sigma: centerness Gaussian σ in cells.
        invisible_threshold: ``valid_centerness`` is False where an invisible box's Gaussian reaches this.

    Returns:
        ``visibility`` (R, C) uint8 (255 = background), ``seg`` (R, C) uint8 0/1, ``valid`` (R, C) bool,
        ``centerness`` (R, C) float32 (max over boxes of ``exp(-d² / 2σ²)``, d from cell centre to box centre in
        cells), ``offset`` (2, R, C) float32 (box centre minus cell centre, in cells, (row, col) order; 255 outside
        vehicles), ``valid_centerness`` (R, C) bool.
    """
    rows, cols = grid.shape
    vis_map = np.full((rows, cols), BACKGROUND, dtype=np.uint8)
    inst_map = np.full((rows, cols), -1, dtype=np.int32)
    centerness = np.zeros((rows, cols), dtype=np.float32)
    valid_centerness = np.ones((rows, cols), dtype=bool)
    offset = np.full((2, rows, cols), IGNORE_OFFSET, dtype=np.float32)
    if len(polygons) == 0:
        return dict(visibility=vis_map, seg=np.zeros((rows, cols), np.uint8), valid=np.ones((rows, cols), bool),
                    centerness=centerness, offset=offset, valid_centerness=valid_centerness)

    # Continuous (col, row) with cell r spanning [r, r + 1): cell centres at r + 0.5.
    center_cells = grid.ego_to_cell(centers)                              # (M, 2) col, row
    row_idx = np.arange(rows, dtype=np.float32)[:, None] + 0.5
    col_idx = np.arange(cols, dtype=np.float32)[None, :] + 0.5
    for k, (poly, level) in enumerate(zip(polygons, visibility)):
        pts = np.round(grid.ego_to_cell(poly)).astype(np.int32)           # (4, 2) col, row
        cv2.fillPoly(vis_map, [pts], int(level))
        cv2.fillPoly(inst_map, [pts], k)
        ccol, crow = center_cells[k]
        gauss = np.exp(-((row_idx - crow) ** 2 + (col_idx - ccol) ** 2) / (2.0 * sigma ** 2)).astype(np.float32)
        np.maximum(centerness, gauss, out=centerness)
        if level < min_visibility:
            valid_centerness &= gauss < invisible_threshold

    inside = inst_map >= 0
    r_in, c_in = np.nonzero(inside)
    k_in = inst_map[inside]
    offset[0, r_in, c_in] = center_cells[k_in, 1] - (r_in + 0.5)
    offset[1, r_in, c_in] = center_cells[k_in, 0] - (c_in + 0.5)
    return dict(visibility=vis_map, seg=(vis_map != BACKGROUND).astype(np.uint8),
                valid=vis_map >= min_visibility, centerness=centerness, offset=offset,
                valid_centerness=valid_centerness)


@TRANSFORMS.register_module()
class RandomBEVTransform(BaseTransform):
    """Draw a rigid BEV augmentation ``bev_aug`` M (PointBeV): yaw U(±20°), translation U(±30 m, ±20 m, 0).

    The model moves its grid points by M before projecting (``geometry.bev_sampling_points``) and
    ``RasterizeBEVTargets`` rasterises the boxes mapped by M⁻¹, so the images are untouched. With
    ``enabled=False`` (validation, or training without BEV augmentation) M is the identity.

    Added key: ``bev_aug`` (4, 4) float32.

    Args:
        enabled: draw a random M (True) or use the identity (False).
        rotate_range: yaw range in degrees.
        translate_range: ``(tx, ty, tz)`` maxima in metres: each drawn from U(-t, t).
    """

    def __init__(self, enabled: bool = True, rotate_range: Sequence[float] = (-20.0, 20.0),
                 translate_range: Sequence[float] = (30.0, 20.0, 0.0)) -> None:
        if len(rotate_range) != 2 or rotate_range[0] > rotate_range[1]:
            raise ValueError(f'RandomBEVTransform: rotate_range must be (low, high) degrees, got {rotate_range}')
        if len(translate_range) != 3 or min(translate_range) < 0:
            raise ValueError('RandomBEVTransform: translate_range must be three non-negative maxima (tx, ty, tz), '
                             f'got {translate_range}')
        self.enabled = bool(enabled)
        self.rotate_range = tuple(float(v) for v in rotate_range)
        self.translate_range = tuple(float(v) for v in translate_range)

    def transform(self, results: dict) -> dict:
        if not self.enabled:
            results['bev_aug'] = np.eye(4, dtype=np.float32)
            return results
        yaw = np.deg2rad(np.random.uniform(*self.rotate_range))
        trans = [np.random.uniform(-t, t) if t > 0 else 0.0 for t in self.translate_range]
        results['bev_aug'] = _rigid_z(yaw, trans).astype(np.float32)
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(enabled={self.enabled}, rotate_range={self.rotate_range}, '
                f'translate_range={self.translate_range})')


@TRANSFORMS.register_module()
class RasterizeBEVTargets(BaseTransform):
    """Vehicle BEV targets (seg, valid, centerness, offset, valid_centerness) on the configured grid.

    Boxes are mapped by ``bev_aug``⁻¹ first (identity when absent). See ``rasterize_bev_targets``.

    Required keys: ``gt_polygons`` (M, 4, 2), ``gt_centers`` (M, ≥2), ``gt_visibility`` (M,); optional
    ``bev_aug``, ``min_visibility``. Added: ``gt_bev`` (dict of the maps above, each (C, R, C)),
    ``bev_aug`` (identity if it was missing).

    Args:
        grid: grid dict (the model's ``grid``); None = 200×200 cells of 0.5 m.
        min_visibility: 1..4; None takes the dataset's ``min_visibility`` of each sample (default 2).
        centerness_sigma: Gaussian σ in cells.
        invisible_threshold: Gaussian level of invisible boxes above which centerness is not supervised.
    """

    def __init__(self, grid: Union[Mapping, BEVGrid, None] = None, min_visibility: Optional[int] = None,
                 centerness_sigma: float = 3.0, invisible_threshold: float = 0.1) -> None:
        if min_visibility is not None and min_visibility not in (1, 2, 3, 4):
            raise ValueError(f'RasterizeBEVTargets: min_visibility must be 1..4 or None, got {min_visibility}')
        if centerness_sigma <= 0:
            raise ValueError(f'RasterizeBEVTargets: centerness_sigma must be positive, got {centerness_sigma}')
        self.grid = BEVGrid.build(grid)
        self.min_visibility = min_visibility
        self.centerness_sigma = float(centerness_sigma)
        self.invisible_threshold = float(invisible_threshold)

    def transform(self, results: dict) -> dict:
        bev_aug = np.asarray(results.get('bev_aug', np.eye(4)), dtype=np.float64)
        inverse = np.linalg.inv(bev_aug)
        polygons = transform_xy(np.asarray(results['gt_polygons']).reshape(-1, 4, 2), inverse)
        centers = transform_xy(np.asarray(results['gt_centers'])[:, :2].reshape(-1, 2), inverse)
        min_vis = self.min_visibility if self.min_visibility is not None else results.get('min_visibility', 2)
        maps = rasterize_bev_targets(self.grid, polygons, centers, np.asarray(results['gt_visibility']),
                                     int(min_vis), self.centerness_sigma, self.invisible_threshold)
        results['gt_bev'] = {k: v if v.ndim == 3 else v[None] for k, v in maps.items()}
        results['bev_aug'] = bev_aug.astype(np.float32)
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(grid={self.grid}, min_visibility={self.min_visibility}, '
                f'centerness_sigma={self.centerness_sigma})')
