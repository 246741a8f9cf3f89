"""PointBeV (Chambon et al., CVPR 2024): sparse BEV segmentation from selected pillars.

Call chain of :class:`PointBeV` (``mode`` of ``forward``):

* ``loss``: images -> ``extract_img_feats`` (frozen ViT -> upsampler -> neck) -> **coarse pass** on random cells
  -> fine selection (top-k coarse cells dilated, no gradient) -> **fine pass** -> logits averaged where both passes
  predicted -> ``BEVLoss(preds, gt, pred_mask=union of predicted cells)``.
* ``predict`` / ``tensor``: one **dense pass** over every cell -> probabilities in ``pred_bev`` / dense logits.

A pass (:meth:`PointBeV.sparse_forward`) lifts only the selected pillars (:class:`PointBeVLifting`: sparse bilinear
gather at the valid pillar × height × camera points, mean over the cameras that see each point, coordinate
embedding, height-compression MLP), scatters them into a masked dense BEV map and runs the sparse UNet and heads
(``sparse_unet.py``, masked-dense emulation of spconv) on the selected cells only.
"""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch import nn

from mmjafar.registry import MODELS
from ..geometry import BEVGrid, apply_transform, project_to_cameras
from .coord_embed import FourierCoordEmbedding, coordinate_bounds
from .segmentor import BEVSegmentor
from .sparse_ops import cells_to_mask, random_cells, select_fine_cells, sparse_grid_sample

Preds = Dict[str, torch.Tensor]


def height_mlp(in_channels: int, channels: int = 128, num_layers: int = 4) -> nn.Sequential:
    """``num_layers`` linear layers ``in_channels -> channels -> ... -> channels`` with ReLU between them."""
    layers = []
    for index in range(num_layers):
        layers.append(nn.Linear(in_channels if index == 0 else channels, channels))
        if index < num_layers - 1:
            layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


@MODELS.register_module()
class PointBeVLifting(nn.Module):
    """Lift the image features of selected BEV pillars (PointBeV's sparse grid-sample view transform).

    For every selected cell and every height ``z_k`` of the grid, the voxel centre (moved by ``bev_aug``) is
    projected into each camera (``geometry.project_to_cameras``); image features are bilinearly sampled at the
    valid projections only (:func:`sparse_grid_sample`) and averaged over the cameras that see the point (zero
    when none does). A coordinate embedding of the normalised point is added, the ``Z`` height features are
    concatenated (``Z * C``) and compressed by a 4-layer MLP (``Z * C -> 128 -> 128 -> 128 -> 128``, ReLU).

    Args:
        grid: BEV grid config (``BEVGrid.build``).
        in_channels: channels of the image features (the neck's output, 128).
        out_channels: channels of the BEV features (128).
        coord_embed: config of the :class:`FourierCoordEmbedding` (its ``out_channels`` is set to
            ``in_channels``); ``None`` disables the embedding.
        coord_margin: normaliser margin of the embedded coordinates (``p / (margin * bound)``).
        height_layers: layers of the height-compression MLP.
    """

    def __init__(self, grid: Optional[Dict] = None, in_channels: int = 128, out_channels: int = 128,
                 coord_embed: Optional[Dict] = dict(num_freqs=8, hidden_channels=256, num_hidden=2),
                 coord_margin: float = 1.2, height_layers: int = 4) -> None:
        super().__init__()
        self.grid = BEVGrid.build(grid)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.coord_embed = (FourierCoordEmbedding(in_dims=3, out_channels=in_channels, **coord_embed)
                            if coord_embed is not None else None)
        self.register_buffer('coord_scale', coordinate_bounds(self.grid, coord_margin), persistent=False)
        # (Z, R * C, 3) voxel centres, cells in raster order
        centres = self.grid.voxel_centers().flatten(1, 2)
        self.register_buffer('voxel_centres', centres, persistent=False)
        self.compress = height_mlp(self.grid.num_heights * in_channels, out_channels, height_layers)

    @property
    def num_cells(self) -> int:
        rows, cols = self.grid.shape
        return rows * cols

    def all_cells(self, batch_size: int, device=None) -> torch.Tensor:
        """``(B, R * C)`` every flat cell index (the dense pass)."""
        return torch.arange(self.num_cells, device=device).expand(batch_size, -1)

    def lift(self, img_feats: torch.Tensor, points: torch.Tensor, cam2img: torch.Tensor, cam2ego: torch.Tensor,
             image_size: Sequence[int]) -> torch.Tensor:
        """Camera-averaged image features at ego points: ``(B, N, C, h, w)``, ``(B, Q, 3)`` -> ``(B, Q, C)``."""
        batch_size, num_cams, channels = img_feats.shape[:3]
        num_points = points.shape[1]
        uv, valid = project_to_cameras(points, cam2ego, cam2img, image_size)      # (B, N, Q, 2), (B, N, Q)
        b_idx, n_idx, q_idx = valid.nonzero(as_tuple=True)
        sampled = sparse_grid_sample(img_feats.flatten(0, 1), uv[b_idx, n_idx, q_idx], b_idx * num_cams + n_idx)
        target = b_idx * num_points + q_idx
        summed = img_feats.new_zeros(batch_size * num_points, channels).index_add(0, target, sampled)
        count = torch.bincount(target, minlength=batch_size * num_points).clamp_min(1).to(summed.dtype)
        return (summed / count.unsqueeze(1)).view(batch_size, num_points, channels)

    def forward(self, img_feats: torch.Tensor, cells: torch.Tensor, cam2img: torch.Tensor, cam2ego: torch.Tensor,
                image_size: Sequence[int], bev_aug: Optional[torch.Tensor] = None
                ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Lift the pillars of ``cells``.

        Args:
            img_feats: ``(B, N, C_in, h, w)`` per-camera feature maps spanning the augmented images.
            cells: ``(B, P)`` flat cell indices (``r * cols + c``) of the selected pillars.
            cam2img, cam2ego: ``(B, N, 3, 3)`` / ``(B, N, 4, 4)`` camera geometry of the augmented images.
            image_size: ``(H, W)`` of the augmented images.
            bev_aug: optional ``(B, 4, 4)`` rigid BEV augmentation moving the grid points.

        Returns:
            ``(B, C_out, R, C)`` BEV features, zero outside the selection, and the ``(B, 1, R, C)`` bool mask of
            the selected cells.
        """
        if img_feats.dim() != 5 or img_feats.shape[2] != self.in_channels:
            raise ValueError(f'PointBeVLifting: img_feats must be (B, N, {self.in_channels}, h, w), got '
                             f'{tuple(img_feats.shape)}')
        if cells.dim() != 2 or cells.shape[0] != img_feats.shape[0]:
            raise ValueError(f'PointBeVLifting: cells must be (B, P) flat cell indices, got {tuple(cells.shape)}')
        batch_size, num_cells = cells.shape
        num_heights = self.grid.num_heights
        centres = self.voxel_centres.to(img_feats.dtype)
        # (B, P, Z, 3): every height of every selected pillar
        points = centres[:, cells].permute(1, 2, 0, 3)
        points = points.reshape(batch_size, num_cells * num_heights, 3)
        if bev_aug is not None:
            points = apply_transform(points, bev_aug.to(points.dtype))
        feats = self.lift(img_feats, points, cam2img, cam2ego, image_size)      # (B, P * Z, C)
        if self.coord_embed is not None:
            feats = feats + self.coord_embed(points / self.coord_scale.to(points.dtype))
        feats = self.compress(feats.view(batch_size, num_cells, num_heights * self.in_channels))  # (B, P, C_out)
        rows, cols = self.grid.shape
        bev = feats.new_zeros(batch_size, self.out_channels, rows * cols).scatter(
            2, cells.unsqueeze(1).expand(-1, self.out_channels, -1), feats.transpose(1, 2))
        return bev.view(batch_size, self.out_channels, rows, cols), cells_to_mask(cells, (rows, cols))


def merge_passes(passes: Sequence[Tuple[Preds, torch.Tensor]]) -> Tuple[Preds, torch.Tensor]:
    """Average each output over the passes that predicted a cell; the merged mask is their union.

    Args:
        passes: ``(preds, mask)`` pairs, ``preds`` maps name -> ``(B, c, R, C)`` (zero outside its mask) and
            ``mask`` is ``(B, 1, R, C)`` bool.
    """
    masks = torch.stack([mask for _, mask in passes])
    union = masks.any(dim=0)
    count = masks.sum(dim=0).clamp_min(1)
    merged = {}
    for name in passes[0][0]:
        total = sum(torch.where(mask, preds[name], torch.zeros_like(preds[name])) for preds, mask in passes)
        merged[name] = total / count.to(total.dtype)
    return merged, union


@MODELS.register_module()
class PointBeV(BEVSegmentor):
    """PointBeV: sparse pillar lifting, masked sparse UNet and heads, coarse/fine training, dense inference.

    Built like every :class:`BEVSegmentor`; the ``view_transform`` is a :class:`PointBeVLifting`, the
    ``bev_encoder`` a :class:`~.sparse_unet.SparseResNetUNet` and the ``head`` a :class:`~.sparse_unet.SparseBEVHead`
    (modules called with the active-cell mask: ``encoder(x, mask)``, ``head(x, mask)``).

    Training (``loss``): a coarse pass on ``coarse_cells`` random cells per sample (every height of each pillar),
    then, with ``fine_pass``, a fine pass on the ``fine_anchors`` cells with the highest coarse probability dilated
    by a ``fine_kernel`` square and capped/filled to ``fine_cells``; the selection carries no gradient. Outputs
    are averaged where both passes predicted and ``BEVLoss`` runs on the predicted ∩ valid cells. Counts larger
    than the grid are clamped to it. ``predict`` and ``tensor`` run one dense pass over every cell.

    Args:
        coarse_cells: random cells of the coarse pass (2 500 of 200×200 in PointBeV).
        fine_cells: cells of the fine pass (2 500).
        fine_anchors: top-scoring coarse cells the fine pass grows from (100).
        fine_kernel: odd side of the square grown around each anchor (9 in the paper, 7 in the released run).
        fine_pass: run the fine pass in training (otherwise coarse only).
        **kwargs: the arguments of :class:`BEVSegmentor`, with ``head=dict(type='SparseBEVHead')``,
            ``view_transform=dict(type='PointBeVLifting')`` and ``bev_encoder=dict(type='SparseResNetUNet')`` by
            default.
    """

    def __init__(self, coarse_cells: int = 2500, fine_cells: int = 2500, fine_anchors: int = 100,
                 fine_kernel: int = 9, fine_pass: bool = True, **kwargs) -> None:
        kwargs.setdefault('head', dict(type='SparseBEVHead'))
        kwargs.setdefault('view_transform', dict(type='PointBeVLifting'))
        kwargs.setdefault('bev_encoder', dict(type='SparseResNetUNet'))
        super().__init__(**kwargs)
        self.check_view_transform(PointBeVLifting, 'in_channels')
        if min(coarse_cells, fine_cells, fine_anchors) < 1:
            raise ValueError(f'PointBeV: coarse_cells, fine_cells and fine_anchors must be >= 1, got '
                             f'{coarse_cells}, {fine_cells}, {fine_anchors}')
        if fine_kernel < 1 or fine_kernel % 2 == 0:
            raise ValueError(f'PointBeV: fine_kernel must be a positive odd number, got {fine_kernel}')
        num_cells = self.view_transform.num_cells
        self.coarse_cells = min(int(coarse_cells), num_cells)
        self.fine_cells = min(int(fine_cells), num_cells)
        self.fine_anchors = min(int(fine_anchors), num_cells)
        self.fine_kernel = int(fine_kernel)
        self.fine_pass = bool(fine_pass)

    def sparse_forward(self, img_feats: torch.Tensor, inputs: dict,
                       cells: torch.Tensor) -> Tuple[Dict[str, torch.Tensor], torch.Tensor]:
        """One pass on the selected ``cells`` ``(B, P)``: predictions (zero outside the selection) and the
        ``(B, 1, R, C)`` mask of predicted cells."""
        bev, mask = self.view_transform(img_feats, cells, inputs['cam2img'], inputs['cam2ego'],
                                        inputs['imgs'].shape[-2:], inputs.get('bev_aug'))
        if self.bev_encoder is not None:
            bev = self.bev_encoder(bev, mask)
        return self.head(bev, mask), mask

    def bev_forward(self, img_feats: torch.Tensor, inputs: dict) -> Dict[str, torch.Tensor]:
        """The dense pass (every cell selected): dict of ``(B, c, R, C)`` maps."""
        cells = self.view_transform.all_cells(img_feats.shape[0], img_feats.device)
        return self.sparse_forward(img_feats, inputs, cells)[0]

    def forward_train(self, inputs: dict) -> Tuple[Dict[str, torch.Tensor], torch.Tensor]:
        """Coarse (+ fine) passes: merged predictions and the mask of predicted cells."""
        self.check_inputs(inputs)
        img_feats = self.extract_img_feats(inputs['imgs'])
        batch_size = img_feats.shape[0]
        cells = random_cells(batch_size, self.view_transform.num_cells, self.coarse_cells, img_feats.device)
        passes = [self.sparse_forward(img_feats, inputs, cells)]
        if self.fine_pass:
            coarse, coarse_mask = passes[0]
            fine = select_fine_cells(coarse['seg'].detach().sigmoid(), coarse_mask, self.fine_anchors,
                                     self.fine_kernel, self.fine_cells)
            passes.append(self.sparse_forward(img_feats, inputs, fine))
        return merge_passes(passes)

    def loss(self, inputs: dict, data_samples: List) -> Dict[str, torch.Tensor]:
        if not data_samples:
            raise ValueError('PointBeV.loss needs data_samples with gt_bev')
        preds, mask = self.forward_train(inputs)
        return self.loss_by_preds(preds, data_samples, pred_mask=mask)
