"""BEV grid and camera geometry shared by the dataset, the GT rasteriser and the three view transforms.

Conventions (design brief §1-§2):

* Ego frame: x forward, y left, z up (metres). The grid covers ``x_range`` × ``y_range`` with square cells of
  ``resolution`` metres. Row 0 is the front edge (largest x), column 0 the left edge (largest y):
  cell centre ``x = x_max - res * (r + 0.5)``, ``y = y_max - res * (c + 0.5)``.
* Lifting heights: ``z_centers`` (SimpleBEV's 8 centres ``-3.375 + 1.25 k`` by default).
* Cameras: ``cam2ego`` (4×4, camera → ego) and ``cam2img`` (3×3 intrinsics of the *augmented* image).
  A point projects to pixel ``(u, v) = K p_cam / z`` with pixel centres at integer coordinates; it is valid when
  ``z_cam > eps`` and the pixel lies inside the image. Normalised coordinates follow
  ``grid_sample(align_corners=False)``: ``u_n = 2 (u + 0.5) / W - 1``, so every feature map that spans the image
  is sampled at the same places whatever its resolution.
* BEV augmentation: a rigid 4×4 ``bev_aug`` M moves the grid points (``p = M p_grid``) before projection; the GT
  boxes are rasterised after mapping them by M⁻¹ (identity at validation).
"""
from dataclasses import dataclass, field
from typing import Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import torch

DEFAULT_Z_CENTERS = tuple(-3.375 + 1.25 * k for k in range(8))
CAMERA_NAMES = ('CAM_FRONT_LEFT', 'CAM_FRONT', 'CAM_FRONT_RIGHT', 'CAM_BACK_LEFT', 'CAM_BACK', 'CAM_BACK_RIGHT')


@dataclass(frozen=True)
class BEVGrid:
    """A metric BEV grid around the ego vehicle (default: 100 m × 100 m, 200×200 cells of 0.5 m, 8 heights)."""

    x_range: Tuple[float, float] = (-50.0, 50.0)
    y_range: Tuple[float, float] = (-50.0, 50.0)
    resolution: float = 0.5
    z_centers: Tuple[float, ...] = field(default=DEFAULT_Z_CENTERS)

    def __post_init__(self) -> None:
        object.__setattr__(self, 'x_range', tuple(float(v) for v in self.x_range))
        object.__setattr__(self, 'y_range', tuple(float(v) for v in self.y_range))
        object.__setattr__(self, 'z_centers', tuple(float(v) for v in self.z_centers))
        for name, (low, high) in (('x_range', self.x_range), ('y_range', self.y_range)):
            cells = (high - low) / self.resolution
            if high <= low or abs(cells - round(cells)) > 1e-6:
                raise ValueError(f'BEVGrid: {name}={(low, high)} must be increasing and a whole number of '
                                 f'{self.resolution} m cells')
        if not self.z_centers:
            raise ValueError('BEVGrid: z_centers must list at least one height')

    @classmethod
    def build(cls, grid: Union['BEVGrid', Mapping, None]) -> 'BEVGrid':
        """A grid from a config dict (``dict(x_range=..., y_range=..., resolution=..., z_centers=...)``)."""
        if grid is None:
            return cls()
        if isinstance(grid, BEVGrid):
            return grid
        return cls(**dict(grid))

    @property
    def shape(self) -> Tuple[int, int]:
        """``(rows, cols)`` = (cells along x, cells along y)."""
        return (int(round((self.x_range[1] - self.x_range[0]) / self.resolution)),
                int(round((self.y_range[1] - self.y_range[0]) / self.resolution)))

    @property
    def num_heights(self) -> int:
        return len(self.z_centers)

    @property
    def max_bound(self) -> float:
        """Largest absolute coordinate of the volume (used to normalise coordinate embeddings)."""
        return max(abs(v) for v in (*self.x_range, *self.y_range, *self.z_centers))

    def ego_to_cell(self, xy: np.ndarray) -> np.ndarray:
        """Ego ``(..., 2)`` x, y -> continuous ``(..., 2)`` (col, row) with cell ``r`` spanning ``[r, r + 1)``."""
        xy = np.asarray(xy, dtype=np.float64)
        return np.stack([(self.y_range[1] - xy[..., 1]) / self.resolution,
                         (self.x_range[1] - xy[..., 0]) / self.resolution], axis=-1)

    def cell_centers(self, device=None, dtype=torch.float32) -> torch.Tensor:
        """``(rows, cols, 2)`` ego x, y of every cell centre."""
        rows, cols = self.shape
        x = self.x_range[1] - self.resolution * (torch.arange(rows, device=device, dtype=dtype) + 0.5)
        y = self.y_range[1] - self.resolution * (torch.arange(cols, device=device, dtype=dtype) + 0.5)
        return torch.stack(torch.meshgrid(x, y, indexing='ij'), dim=-1)

    def voxel_centers(self, device=None, dtype=torch.float32) -> torch.Tensor:
        """``(Z, rows, cols, 3)`` ego x, y, z of every voxel centre (heights first)."""
        xy = self.cell_centers(device, dtype)
        z = torch.tensor(self.z_centers, device=device, dtype=dtype)
        xy = xy.unsqueeze(0).expand(len(z), -1, -1, -1)
        z = z.view(-1, 1, 1, 1).expand(-1, *xy.shape[1:3], 1)
        return torch.cat([xy, z], dim=-1)


def apply_transform(points: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
    """Apply ``(..., 4, 4)`` rigid transforms to ``(..., P, 3)`` points (batch dims broadcast)."""
    return points @ matrix[..., :3, :3].transpose(-1, -2) + matrix[..., None, :3, 3]


def project_to_cameras(points: torch.Tensor, cam2ego: torch.Tensor, cam2img: torch.Tensor,
                       image_size: Sequence[int], eps: float = 1e-5) -> Tuple[torch.Tensor, torch.Tensor]:
    """Project ego points into every camera.

    Args:
        points: ``(B, P, 3)`` ego-frame points (already moved by ``bev_aug`` if any).
        cam2ego: ``(B, N, 4, 4)`` camera -> ego transforms.
        cam2img: ``(B, N, 3, 3)`` intrinsics of the (augmented) images.
        image_size: ``(H, W)`` of the augmented images the intrinsics refer to.

    Returns:
        ``uv`` ``(B, N, P, 2)`` in ``grid_sample(align_corners=False)`` coordinates (``[-1, 1]`` spans the image)
        and ``valid`` ``(B, N, P)``: in front of the camera and strictly inside the image.
    """
    height, width = int(image_size[0]), int(image_size[1])
    rot = cam2ego[..., :3, :3]                                             # (B, N, 3, 3)
    trans = cam2ego[..., :3, 3]                                            # (B, N, 3)
    # p_cam = R^T (p - t), batched over cameras: (B, N, P, 3)
    p_cam = (points.unsqueeze(1) - trans.unsqueeze(2)) @ rot
    pix = p_cam @ cam2img.transpose(-1, -2)
    depth = pix[..., 2]
    in_front = depth > eps
    uv = pix[..., :2] / depth.clamp_min(eps).unsqueeze(-1)
    scale = uv.new_tensor([2.0 / width, 2.0 / height])
    uv = (uv + 0.5) * scale - 1.0
    valid = in_front & (uv.abs() < 1.0).all(dim=-1)
    return uv, valid


def bev_sampling_points(grid: BEVGrid, bev_aug: Optional[torch.Tensor], batch_size: int,
                        device=None, dtype=torch.float32) -> torch.Tensor:
    """``(B, Z * rows * cols, 3)`` voxel centres moved by ``bev_aug`` (``(B, 4, 4)`` or None), heights first."""
    pts = grid.voxel_centers(device, dtype).reshape(1, -1, 3).expand(batch_size, -1, -1)
    if bev_aug is not None:
        pts = apply_transform(pts, bev_aug.to(device=device, dtype=dtype))
    return pts
