"""Dense lifting of multi-camera image features onto the BEV voxel grid (SimpleBEV; design brief §2).

Every voxel centre (moved by the BEV augmentation) is projected into every camera with
:func:`~projects.bev.bev.geometry.project_to_cameras`; the camera's feature map is sampled there with
``grid_sample(align_corners=False)`` (the map spans the image, so no intrinsics rescaling is needed whatever its
resolution), samples that are behind the camera or outside the image are zeroed, and the voxel gets the mean over
the cameras that see it (count clamped to ≥ 1; voxels no camera sees stay 0).

Memory: the cameras are sampled one at a time into one accumulator, so the peak is about two ``(B, C, Z·R·C)``
volumes (for 128 × 8 × 200 × 200 float32: 164 MiB each) instead of one per camera.
"""
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule

from mmjafar.registry import MODELS
from ..geometry import BEVGrid, bev_sampling_points, project_to_cameras


def lift_features(img_feats: torch.Tensor, points: torch.Tensor, cam2ego: torch.Tensor, cam2img: torch.Tensor,
                  image_size: Tuple[int, int]) -> Tuple[torch.Tensor, torch.Tensor]:
    """Average the features of the cameras that see each point.

    Args:
        img_feats: ``(B, N, C, h, w)`` per-camera maps spanning the whole (augmented) image.
        points: ``(B, P, 3)`` ego-frame points.
        cam2ego, cam2img: ``(B, N, 4, 4)`` and ``(B, N, 3, 3)`` of the augmented images.
        image_size: ``(H, W)`` of the images ``cam2img`` refers to.

    Returns:
        ``(B, C, P)`` mean features and ``(B, P)`` the number of cameras that see each point.
    """
    if img_feats.dim() != 5:
        raise ValueError(f'lift_features: img_feats must be (B, N, C, h, w), got {tuple(img_feats.shape)}')
    batch, cams, channels = img_feats.shape[:3]
    if cam2ego.shape[:2] != (batch, cams) or cam2img.shape[:2] != (batch, cams):
        raise ValueError(f'lift_features: {cams} feature maps per sample but cam2ego {tuple(cam2ego.shape)} and '
                         f'cam2img {tuple(cam2img.shape)}; every camera needs its matrices')
    uv, valid = project_to_cameras(points, cam2ego.to(points.dtype), cam2img.to(points.dtype), image_size)
    # invalid samples are sent far outside the map, where zero padding returns exactly 0
    uv = torch.where(valid.unsqueeze(-1), uv, uv.new_full((), 4.0)).to(img_feats.dtype)
    out = img_feats.new_zeros(batch, channels, points.shape[1])
    for cam in range(cams):
        sampled = F.grid_sample(img_feats[:, cam], uv[:, cam].unsqueeze(1), mode='bilinear',
                                padding_mode='zeros', align_corners=False)  # (B, C, 1, P)
        out.add_(sampled.squeeze(2))  # in place: the sum never needs its inputs for backward
    count = valid.sum(dim=1)
    return out / count.clamp_min(1).unsqueeze(1).to(out.dtype), count


@MODELS.register_module()
class DenseLifting(BaseModule):
    """``(img_feats (B, N, C, h, w), inputs) -> (B, C, Z, R, C')`` voxel features of the grid.

    ``inputs`` is ``BEVDataPreprocessor``'s: ``imgs`` (for the image size), ``cam2img``, ``cam2ego`` and
    ``bev_aug`` (None or (B, 4, 4)).

    Args:
        grid: the ``BEVGrid`` config (model grid == dataset grid).
        init_cfg: mmengine init config.
    """

    def __init__(self, grid: Optional[dict] = None, init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.grid = BEVGrid.build(grid)

    def forward(self, img_feats: torch.Tensor, inputs: dict) -> torch.Tensor:
        batch = img_feats.shape[0]
        points = bev_sampling_points(self.grid, inputs.get('bev_aug'), batch, device=img_feats.device)
        image_size = tuple(inputs['imgs'].shape[-2:])
        feats, _ = lift_features(img_feats, points, inputs['cam2ego'], inputs['cam2img'], image_size)
        return feats.view(batch, -1, self.grid.num_heights, *self.grid.shape)
