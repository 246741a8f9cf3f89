"""Static BEVFormer for BEV segmentation (design brief §2): learned BEV queries refined by deformable self-attention
over the BEV map and spatial cross-attention into the cameras, then dense heads.

Layout (``BEVFormerSeg.bev_forward``)::

    img_feats (B, N, D, h, w) ──┐
    grid anchors (Z heights) ── project_to_cameras ──> reference points (B, N, R*C, Z, 2), valid
    queries + pos (R*C, D) ── 6 × [self-attn → LN → cross-attn → LN → FFN + residual → LN] ──> (B, D, R, C)
        ──> bev_encoder (None | ResNetUNet) ──> head (seg, centerness, offset)

Deviations from the reference code, on purpose:

* From BEVFormer (fundamentalvision/BEVFormer, detection only): no temporal self-attention (no previous BEV, no
  ego-motion shift; the self-attention reads the current queries only, so its offsets come from ``query + pos``
  instead of ``[prev_bev, query + pos]``); one feature level (the neck's map) and no camera / level embeddings on
  the values (``cams_embeds`` option, off by default as in PointBeV's re-implementation); the height anchors are the
  grid's ``z_centers`` (8 by default, 1 sampling point each) instead of 4 anchors spread over the pillar; the
  positional embedding is a full learned ``R × C × D`` table (BEVFormer factorises it into row + column
  embeddings) and the queries start at ``0.1 · randn``; image coordinates are pixel-centred,
  ``(u + 0.5) / W`` (BEVFormer uses ``u / W``, half a pixel off against ``grid_sample(align_corners=False)``), and
  the BEV augmentation ``bev_aug`` moves the anchors before projection, as in the other two models; anchors that
  are invalid in a camera (behind it or outside the image) get zero attention weight in that camera (BEVFormer
  samples them at their raw projection, meaningless behind the camera, and lets offsets pull border features in).
* From PointBeV's re-implementation (valeoai/PointBeV, the one the paper's numbers come from), whose quirks are
  not reproduced: there, every layer's self-attention reads the *initial* learned queries, so layers 1–5 discard
  the previous layer's output before their self-attention (here each layer refines the previous one, as in
  BEVFormer); the positional embedding is a second draw of the query generator fed through the same code path
  (here it is its own table); the self-attention reference points are ``(row, column)`` while the sampler expects
  ``(x, y)`` (here ``(column, row)``); the self-attention's values include the positional embedding and its output
  goes through two projections (here values are the queries, one output projection, as in BEVFormer); the FFN has
  no dropout (here dropout 0.1 after the activation and after the second linear, as BEVFormer's FFN).
"""
from typing import Dict, Optional, Tuple

import torch
from mmengine.model import BaseModule
from torch import nn

from mmjafar.registry import MODELS
from ..geometry import BEVGrid, bev_sampling_points, project_to_cameras
from .deform_attn import BEVDeformableSelfAttention, BEVSpatialCrossAttention
from .segmentor import BEVSegmentor


class BEVFormerFFN(nn.Module):
    """``x + Dropout(Linear(Dropout(ReLU(Linear(x)))))``, ``D -> hidden -> D``."""

    def __init__(self, embed_dims: int = 128, hidden_dims: int = 1028, dropout: float = 0.1) -> None:
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(embed_dims, hidden_dims), nn.ReLU(inplace=True), nn.Dropout(dropout),
                                    nn.Linear(hidden_dims, embed_dims), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.layers(x)


class BEVFormerLayer(BaseModule):
    """One post-norm encoder layer: self-attention → LN → spatial cross-attention → LN → FFN → LN (each block with
    its own residual)."""

    def __init__(self, embed_dims: int = 128, num_heads: int = 4, num_points_self: int = 8,
                 num_points_cross: int = 8, ffn_dims: int = 1028, dropout: float = 0.1,
                 impl: Optional[str] = None) -> None:
        super().__init__()
        self.self_attn = BEVDeformableSelfAttention(embed_dims, num_heads, num_points_self, dropout, impl)
        self.norm1 = nn.LayerNorm(embed_dims)
        self.cross_attn = BEVSpatialCrossAttention(embed_dims, num_heads, num_points_cross, dropout, impl)
        self.norm2 = nn.LayerNorm(embed_dims)
        self.ffn = BEVFormerFFN(embed_dims, ffn_dims, dropout)
        self.norm3 = nn.LayerNorm(embed_dims)

    def forward(self, query: torch.Tensor, query_pos: torch.Tensor, bev_shape: Tuple[int, int],
                img_feats: torch.Tensor, reference_points: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        query = self.norm1(self.self_attn(query, query_pos, bev_shape))
        query = self.norm2(self.cross_attn(query, query_pos, img_feats, reference_points, valid))
        return self.norm3(self.ffn(query))


@MODELS.register_module()
class BEVFormerEncoder(BaseModule):
    """BEVFormer's encoder without temporal attention, as a view transform: camera features -> BEV features.

    Args:
        grid: BEV grid dict (``x_range``, ``y_range``, ``resolution``, ``z_centers``); it sets the query map
            (``R × C``) and the height anchors (``Z = len(z_centers)``) of the cross-attention.
        embed_dims: query channels; the image features (neck output) must have as many.
        num_layers: encoder layers.
        num_heads: attention heads of both attentions.
        num_points_self: sampling points per head of the self-attention.
        num_points_cross: sampling points per head and camera of the cross-attention, split evenly across the
            ``Z`` anchors (must be a multiple of ``Z``).
        ffn_dims: hidden width of the FFN.
        dropout: dropout of the attentions' outputs and of the FFN.
        query_init_std: std of the learned queries and positional embeddings at init.
        cams_embeds: add a learned per-camera embedding to the image features (BEVFormer's ``use_cams_embeds``).
        num_cams: cameras per sample (only used by ``cams_embeds``).
        impl: deformable attention implementation, mmjafar's vocabulary
            (:mod:`mmjafar.models.layers.attention_impl`): None (the process-wide default, 'auto': mmcv's CUDA
            kernel where it can run), 'auto', 'torch', 'reference' or 'mmcv'.

    Shapes: ``forward(img_feats (B, N, D, h, w), cam2img (B, N, 3, 3), cam2ego (B, N, 4, 4), bev_aug (B, 4, 4) or
    None, image_size (H, W)) -> (B, D, R, C)``.
    """

    def __init__(self, grid: Optional[Dict] = None, embed_dims: int = 128, num_layers: int = 6, num_heads: int = 4,
                 num_points_self: int = 8, num_points_cross: int = 8, ffn_dims: int = 1028, dropout: float = 0.1,
                 query_init_std: float = 0.1, cams_embeds: bool = False, num_cams: int = 6,
                 impl: Optional[str] = None, init_cfg: Optional[Dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.grid = BEVGrid.build(grid)
        if num_points_cross % self.grid.num_heights:
            raise ValueError(f'BEVFormerEncoder: num_points_cross={num_points_cross} must be a multiple of the '
                             f'{self.grid.num_heights} height anchors (grid z_centers)')
        self.embed_dims = embed_dims
        rows, cols = self.grid.shape
        self.query_init_std = query_init_std
        self.bev_queries = nn.Parameter(query_init_std * torch.randn(rows * cols, embed_dims))
        self.bev_pos = nn.Parameter(query_init_std * torch.randn(rows * cols, embed_dims))
        self.cams_embeds = nn.Parameter(torch.randn(num_cams, embed_dims)) if cams_embeds else None
        self.layers = nn.ModuleList(
            BEVFormerLayer(embed_dims, num_heads, num_points_self, num_points_cross, ffn_dims, dropout, impl)
            for _ in range(num_layers))

    def reference_points(self, cam2img: torch.Tensor, cam2ego: torch.Tensor, bev_aug: Optional[torch.Tensor],
                         image_size: Tuple[int, int]) -> Tuple[torch.Tensor, torch.Tensor]:
        """Height anchors of every query projected into every camera: ``(B, N, R*C, Z, 2)`` in ``[0, 1]`` (x, y)
        of the image and ``(B, N, R*C, Z)`` validity (in front of the camera and inside the image)."""
        batch, cams = cam2ego.shape[:2]
        points = bev_sampling_points(self.grid, bev_aug, batch, device=cam2ego.device, dtype=cam2ego.dtype)
        uv, valid = project_to_cameras(points, cam2ego, cam2img, image_size)          # (B, N, Z*R*C, ...)
        heights, queries = self.grid.num_heights, self.grid.shape[0] * self.grid.shape[1]
        uv = uv.view(batch, cams, heights, queries, 2).transpose(2, 3)
        valid = valid.view(batch, cams, heights, queries).transpose(2, 3)
        # behind-camera points get clamped depths and huge coordinates: keep them finite and harmless
        ref = torch.where(valid.unsqueeze(-1), (uv + 1.0) * 0.5, torch.zeros_like(uv))
        return ref.contiguous(), valid.contiguous()

    def forward(self, img_feats: torch.Tensor, cam2img: torch.Tensor, cam2ego: torch.Tensor,
                bev_aug: Optional[torch.Tensor], image_size: Tuple[int, int]) -> torch.Tensor:
        if img_feats.dim() != 5 or img_feats.shape[2] != self.embed_dims:
            raise ValueError(f'BEVFormerEncoder: expected image features (B, N, {self.embed_dims}, h, w), got '
                             f'{tuple(img_feats.shape)}; set the neck out_channels to embed_dims')
        batch, cams = img_feats.shape[:2]
        if self.cams_embeds is not None:
            if cams != self.cams_embeds.shape[0]:
                raise ValueError(f'BEVFormerEncoder: cams_embeds built for {self.cams_embeds.shape[0]} cameras, '
                                 f'got {cams}; set num_cams')
            img_feats = img_feats + self.cams_embeds.to(img_feats.dtype)[None, :, :, None, None]
        # geometry in float32 whatever the feature dtype (bf16 would put anchors pixels off)
        ref, valid = self.reference_points(cam2img.float(), cam2ego.float(),
                                           None if bev_aug is None else bev_aug.float(), image_size)
        ref = ref.to(img_feats.dtype)
        rows, cols = self.grid.shape
        query = self.bev_queries.to(img_feats.dtype).unsqueeze(0).expand(batch, -1, -1)
        pos = self.bev_pos.to(img_feats.dtype).unsqueeze(0)
        for layer in self.layers:
            query = layer(query, pos, (rows, cols), img_feats, ref, valid)
        return query.transpose(1, 2).reshape(batch, self.embed_dims, rows, cols)


@MODELS.register_module()
class BEVFormerSeg(BEVSegmentor):
    """Static BEVFormer for BEV vehicle segmentation, with the shared image branch and PointBeV's losses.

    ``bev_forward``: the :class:`BEVFormerEncoder` (``view_transform``, given the model's grid) turns the neck's
    ``(B, N, D, h, w)`` camera features into ``(B, D, R, C)`` BEV queries; ``bev_encoder`` (None by default: the
    dense heads sit straight on the queries, as in PointBeV's BEVFormer; or ``dict(type='ResNetUNet')``, SimpleBEV
    style) refines them and ``head`` predicts seg / centerness / offset. See the module docstring for the
    deviations from BEVFormer's and PointBeV's code.

    Args:
        **kwargs: the arguments of :class:`BEVSegmentor`; ``view_transform`` is the encoder config
            (``dict(type='BEVFormerEncoder')`` by default), whose ``embed_dims`` must equal the neck's
            ``out_channels``; ``bev_encoder`` None (default) or a BEV network config (``ResNetUNet``).
    """

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault('view_transform', dict(type='BEVFormerEncoder'))
        super().__init__(**kwargs)
        self.check_view_transform(BEVFormerEncoder, 'embed_dims')

    def bev_forward(self, img_feats: torch.Tensor, inputs: dict) -> Dict[str, torch.Tensor]:
        bev = self.view_transform(img_feats, inputs['cam2img'], inputs['cam2ego'], inputs.get('bev_aug'),
                                  tuple(inputs['imgs'].shape[-2:]))
        if self.bev_encoder is not None:
            bev = self.bev_encoder(bev)
        return self.head(bev)
