"""Multi-scale deformable attention (Deformable DETR) and BEVFormer's two attention blocks, static version.

* :func:`multi_scale_deformable_attn`: the sampling core. A pure-PyTorch path (per level ``grid_sample`` of the
  values at ``2 * loc - 1``, ``align_corners=False``, zero padding, weighted sum over points, levels and heads)
  runs everywhere; on CUDA tensors mmcv's compiled ``MultiScaleDeformableAttnFunction`` is used when mmcv was
  built with CUDA. Both compute the same function (tests compare them). The choice is mmjafar's ``impl``
  vocabulary (:mod:`mmjafar.models.layers.attention_impl`): 'auto', 'torch' / 'reference' or 'mmcv'.
* :class:`DeformableSampler`: value / offset / attention-weight projections around the core, for queries with
  ``A`` reference anchors each (``A = 1``: Deformable DETR; ``A = Z`` heights: BEVFormer's 3-D variant, the
  points split evenly across the anchors). No output projection (the blocks below own it).
* :class:`BEVDeformableSelfAttention`: deformable self-attention over the BEV query map (1 level), reference =
  normalised cell centre ``(x = column, y = row)``.
* :class:`BEVSpatialCrossAttention`: each BEV query attends to the cameras its height anchors project into.

Coordinates: reference points and sampling locations are in ``[0, 1]`` with ``(0, 0)`` the top-left *corner* of
the map and ``(1, 1)`` the bottom-right corner (``grid_sample(align_corners=False)`` convention), ``x`` first.
Sampling offsets are predicted in cells of the sampled map and divided by its ``(w, h)``.
"""
import math
from typing import Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import nn

from mmjafar.models.layers import check_attn_impl, use_kernel_impl
from mmjafar.registry import MODELS

_KERNEL = None  # cached: mmcv's MultiScaleDeformableAttnFunction, or False when it cannot run on CUDA


def _mmcv_kernel():
    """mmcv's compiled deformable-attention autograd function, or None (mmcv-lite or a CPU-only build)."""
    global _KERNEL
    if _KERNEL is None:
        try:
            from mmcv.ops import get_compiling_cuda_version
            from mmcv.ops.multi_scale_deform_attn import MultiScaleDeformableAttnFunction
            _KERNEL = MultiScaleDeformableAttnFunction if get_compiling_cuda_version() != 'not available' else False
        except (ImportError, OSError, RuntimeError):
            _KERNEL = False
    return _KERNEL or None


def level_start_index(spatial_shapes: torch.Tensor) -> torch.Tensor:
    """``(L,)`` start of each level in the flattened value sequence, from ``(L, 2)`` ``(h, w)`` shapes."""
    areas = spatial_shapes.prod(dim=1)
    return torch.cat([areas.new_zeros(1), areas.cumsum(0)[:-1]])


def kernel_im2col_step(batch: int, im2col_step: int) -> int:
    """The largest divisor of ``batch`` not above ``im2col_step``: mmcv's kernel asserts that its (clipped) step
    divides the batch (e.g. 12 samples × 6 cameras = 72 with the default 64 would fail)."""
    step = max(1, min(batch, im2col_step))
    while batch % step:
        step -= 1
    return step


def deformable_attn_pytorch(value: torch.Tensor, spatial_shapes: Sequence[Tuple[int, int]],
                            sampling_locations: torch.Tensor, attention_weights: torch.Tensor) -> torch.Tensor:
    """Pure-PyTorch multi-scale deformable attention.

    Args:
        value: ``(B, S, H, Dh)`` per-head values of all levels, flattened row-major and concatenated.
        spatial_shapes: ``(h, w)`` of each of the ``L`` levels (``sum(h * w) == S``).
        sampling_locations: ``(B, Q, H, L, P, 2)`` in ``[0, 1]``, ``(x, y)``.
        attention_weights: ``(B, Q, H, L, P)``.

    Returns:
        ``(B, Q, H * Dh)``.
    """
    batch, _, heads, head_dims = value.shape
    _, queries, _, levels, points, _ = sampling_locations.shape
    grids = (2.0 * sampling_locations - 1.0).permute(0, 2, 1, 3, 4, 5).flatten(0, 1)   # (B*H, Q, L, P, 2)
    weights = attention_weights.permute(0, 2, 1, 3, 4).flatten(0, 1)                  # (B*H, Q, L, P)
    out = value.new_zeros(batch * heads, head_dims, queries)
    start = 0
    for lvl, (height, width) in enumerate(spatial_shapes):
        height, width = int(height), int(width)
        level_value = value[:, start:start + height * width]                          # (B, h*w, H, Dh)
        start += height * width
        level_value = level_value.permute(0, 2, 3, 1).reshape(batch * heads, head_dims, height, width)
        sampled = F.grid_sample(level_value, grids[:, :, lvl], mode='bilinear', padding_mode='zeros',
                                align_corners=False)                                   # (B*H, Dh, Q, P)
        out = out + (sampled * weights[:, None, :, lvl]).sum(-1)
    return out.view(batch, heads * head_dims, queries).transpose(1, 2).contiguous()


def multi_scale_deformable_attn(value: torch.Tensor, spatial_shapes: torch.Tensor, sampling_locations: torch.Tensor,
                                attention_weights: torch.Tensor, im2col_step: int = 64,
                                impl: Optional[str] = None) -> torch.Tensor:
    """Multi-scale deformable attention; shapes as :func:`deformable_attn_pytorch`, ``spatial_shapes`` a ``(L, 2)``
    long tensor of ``(h, w)``.

    ``impl``: 'auto' = mmcv's compiled kernel where it can run (CUDA tensors, mmcv built with CUDA; see
    :mod:`mmjafar.models.layers.device_kernels`), else PyTorch; 'mmcv' = require the kernel (a one-line error with
    the reason where it cannot run); 'torch' or 'reference' = always PyTorch; None = the process-wide default. The
    kernel runs in float32 (inputs of other dtypes are cast and the result cast back, as BEVFormer's fp32 variant
    does).
    """
    if value.dim() != 4 or sampling_locations.dim() != 6 or attention_weights.dim() != 5:
        raise ValueError('multi_scale_deformable_attn: expected value (B, S, H, Dh), sampling_locations '
                         f'(B, Q, H, L, P, 2) and attention_weights (B, Q, H, L, P), got {tuple(value.shape)}, '
                         f'{tuple(sampling_locations.shape)}, {tuple(attention_weights.shape)}')
    if int(spatial_shapes.prod(dim=1).sum()) != value.shape[1]:
        raise ValueError(f'multi_scale_deformable_attn: spatial_shapes {spatial_shapes.tolist()} cover '
                         f'{int(spatial_shapes.prod(dim=1).sum())} values but value has {value.shape[1]}')
    kernel = None
    if use_kernel_impl(impl, 'mmcv.ms_deform_attn', value, 'multi_scale_deformable_attn', dtype=torch.float32):
        kernel = _mmcv_kernel()
    if kernel is None:
        return deformable_attn_pytorch(value, spatial_shapes.tolist(), sampling_locations, attention_weights)
    out = kernel.apply(value.float().contiguous(), spatial_shapes, level_start_index(spatial_shapes),
                       sampling_locations.float().contiguous(), attention_weights.float().contiguous(),
                       kernel_im2col_step(value.shape[0], im2col_step))
    return out.to(value.dtype)


class DeformableSampler(BaseModule):
    """Deformable attention of queries with ``A`` reference anchors over one or more value maps.

    For every query, head and level, ``P`` points are sampled; with ``A > 1`` anchors (BEVFormer's 3-D attention:
    the projections of a pillar's heights into one camera) point ``p`` belongs to anchor ``p % A``, so ``P`` must be
    a multiple of ``A``. Offsets are in cells of each level's map; the softmax runs over ``L * P``.

    Init (Deformable DETR / BEVFormer): offset weights 0 and biases on a per-head circle, point ``p`` of head ``h`` at
    ``(p + 1) * d_h`` cells with ``d_h`` the direction ``2 pi h / H`` scaled to unit max-norm; attention-logit
    weights and biases 0 (uniform weights); value projection Xavier-uniform, bias 0.

    Args:
        embed_dims: query and value channels.
        num_heads: attention heads (``embed_dims`` must be divisible by it).
        num_levels: value maps.
        num_points: sampling points per query, head and level.
        im2col_step: mmcv kernel's batch step.
        impl: None, 'auto', 'torch', 'reference' or 'mmcv' (see :func:`multi_scale_deformable_attn`); also an
            attribute.

    Shapes: ``forward(query (B, Q, C), value (B, S, C), spatial_shapes (L, 2), reference_points (B, Q, A, 2),
    anchor_mask (B, Q, A) or None) -> (B, Q, C)``. ``anchor_mask`` zeroes the (already normalised) attention weights
    of the points of masked anchors, so they contribute nothing wherever their offsets lead.
    """

    def __init__(self, embed_dims: int = 128, num_heads: int = 4, num_levels: int = 1, num_points: int = 8,
                 im2col_step: int = 64, impl: Optional[str] = None) -> None:
        super().__init__()
        if embed_dims % num_heads:
            raise ValueError(f'DeformableSampler: embed_dims={embed_dims} is not divisible by num_heads={num_heads}')
        self.embed_dims, self.num_heads = embed_dims, num_heads
        self.num_levels, self.num_points = num_levels, num_points
        self.im2col_step, self.impl = im2col_step, check_attn_impl(impl, ('mmcv', ), 'DeformableSampler')
        self.sampling_offsets = nn.Linear(embed_dims, num_heads * num_levels * num_points * 2)
        self.attention_weights = nn.Linear(embed_dims, num_heads * num_levels * num_points)
        self.value_proj = nn.Linear(embed_dims, embed_dims)
        self.init_weights()

    def init_weights(self) -> None:
        nn.init.zeros_(self.sampling_offsets.weight)
        angles = torch.arange(self.num_heads, dtype=torch.float32) * (2.0 * math.pi / self.num_heads)
        direction = torch.stack([angles.cos(), angles.sin()], dim=-1)
        direction = direction / direction.abs().amax(dim=-1, keepdim=True)
        scale = torch.arange(1, self.num_points + 1, dtype=torch.float32).view(1, 1, -1, 1)
        bias = direction.view(self.num_heads, 1, 1, 2) * scale
        with torch.no_grad():
            self.sampling_offsets.bias.copy_(bias.expand(-1, self.num_levels, -1, -1).reshape(-1))
        nn.init.zeros_(self.attention_weights.weight)
        nn.init.zeros_(self.attention_weights.bias)
        nn.init.xavier_uniform_(self.value_proj.weight)
        nn.init.zeros_(self.value_proj.bias)
        self._is_init = True

    def forward(self, query: torch.Tensor, value: torch.Tensor, spatial_shapes: torch.Tensor,
                reference_points: torch.Tensor, anchor_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        batch, num_query, _ = query.shape
        anchors = reference_points.shape[2]
        if self.num_points % anchors:
            raise ValueError(f'DeformableSampler: num_points={self.num_points} must be a multiple of the '
                             f'{anchors} reference anchors per query')
        if spatial_shapes.shape[0] != self.num_levels:
            raise ValueError(f'DeformableSampler: built for {self.num_levels} levels, got spatial_shapes of '
                             f'{spatial_shapes.shape[0]}')
        heads, levels, points = self.num_heads, self.num_levels, self.num_points
        value = self.value_proj(value).view(batch, value.shape[1], heads, -1)
        offsets = self.sampling_offsets(query).view(batch, num_query, heads, levels, points, 2)
        weights = self.attention_weights(query).view(batch, num_query, heads, levels * points)
        weights = weights.softmax(-1).view(batch, num_query, heads, levels, points)
        if anchor_mask is not None:
            weights = (weights.view(batch, num_query, heads, levels, points // anchors, anchors)
                       * anchor_mask[:, :, None, None, None, :].to(weights.dtype)).flatten(-2)
        normaliser = spatial_shapes.flip(-1).to(offsets.dtype)                        # (L, 2) as (w, h)
        offsets = offsets / normaliser[None, None, None, :, None, :]
        # point p -> (group p // A, anchor p % A): add the anchor's reference point
        offsets = offsets.view(batch, num_query, heads, levels, points // anchors, anchors, 2)
        locations = reference_points[:, :, None, None, None, :, :] + offsets
        locations = locations.view(batch, num_query, heads, levels, points, 2)
        return multi_scale_deformable_attn(value, spatial_shapes, locations, weights, self.im2col_step, self.impl)


def bev_reference_points(rows: int, cols: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """``(rows * cols, 2)`` normalised cell centres ``((c + 0.5) / cols, (r + 0.5) / rows)``, row-major."""
    y = (torch.arange(rows, device=device, dtype=dtype) + 0.5) / rows
    x = (torch.arange(cols, device=device, dtype=dtype) + 0.5) / cols
    yy, xx = torch.meshgrid(y, x, indexing='ij')
    return torch.stack([xx, yy], dim=-1).reshape(-1, 2)


class _DeformableBlock(BaseModule):
    """A single-level :class:`DeformableSampler`, then output projection, dropout and residual (the two blocks
    below); ``impl`` chooses the sampling core (see :func:`multi_scale_deformable_attn`)."""

    def __init__(self, embed_dims: int = 128, num_heads: int = 4, num_points: int = 8, dropout: float = 0.1,
                 impl: Optional[str] = None) -> None:
        super().__init__()
        self.embed_dims = embed_dims
        self.sampler = DeformableSampler(embed_dims, num_heads, num_levels=1, num_points=num_points, impl=impl)
        self.output_proj = nn.Linear(embed_dims, embed_dims)
        self.dropout = nn.Dropout(dropout)
        self.init_weights()

    def init_weights(self) -> None:
        self.sampler.init_weights()
        nn.init.xavier_uniform_(self.output_proj.weight)
        nn.init.zeros_(self.output_proj.bias)
        self._is_init = True


@MODELS.register_module()
class BEVDeformableSelfAttention(_DeformableBlock):
    """BEVFormer's BEV self-attention without the temporal part: deformable attention of every BEV query over the
    BEV map itself (1 level), then output projection, dropout and residual.

    Offsets and attention weights come from ``query + query_pos``; the values are the queries without positional
    embedding; each query's reference point is its own cell centre ``(x = column, y = row)`` normalised to
    ``[0, 1]``.

    Shapes: ``forward(query (B, R*C, D), query_pos (B or 1, R*C, D), bev_shape=(R, C)) -> (B, R*C, D)``.
    """

    def forward(self, query: torch.Tensor, query_pos: Optional[torch.Tensor], bev_shape: Tuple[int, int]
                ) -> torch.Tensor:
        rows, cols = bev_shape
        if query.shape[1] != rows * cols:
            raise ValueError(f'BEVDeformableSelfAttention: {query.shape[1]} queries for a {rows}x{cols} BEV map')
        attn_query = query if query_pos is None else query + query_pos
        reference = bev_reference_points(rows, cols, query.device, query.dtype)
        reference = reference.view(1, -1, 1, 2).expand(query.shape[0], -1, -1, -1)
        shapes = torch.tensor([[rows, cols]], device=query.device, dtype=torch.long)
        out = self.sampler(attn_query, query, shapes, reference)
        return query + self.dropout(self.output_proj(out))


def _gather_rows(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``x`` (B, Q, *F), ``index`` (B, N, L) -> (B, N, L, *F) with ``out[b, n, l] = x[b, index[b, n, l]]``."""
    batch, cams, length = index.shape
    flat = index.reshape(batch, cams * length)
    flat = flat.view(batch, cams * length, *([1] * (x.dim() - 2))).expand(-1, -1, *x.shape[2:])
    return torch.gather(x, 1, flat).view(batch, cams, length, *x.shape[2:])


@MODELS.register_module()
class BEVSpatialCrossAttention(_DeformableBlock):
    """BEVFormer's spatial cross-attention: every BEV query reads the image features where its pillar projects.

    For each sample and camera, the queries with at least one valid height anchor in that camera are gathered
    (padded to the longest list over the batch and cameras), attend with 3-D deformable attention (the anchors
    are the reference points, the points split evenly across them) to that camera's feature map, and are
    scatter-added back. Anchors that are not valid in a camera (behind it or outside the image) get zero attention
    weight there (their softmax share is dropped, not renormalised). Each query's sum is divided by the number of
    cameras that see it (at least 1), projected, passed through dropout and added to the residual. A query seen by
    no camera receives nothing from the images: it keeps its residual plus the output projection's bias (zero at
    init), as in BEVFormer.

    Shapes: ``forward(query (B, Q, D), query_pos (B or 1, Q, D) or None, img_feats (B, N, D, h, w),
    reference_points (B, N, Q, Z, 2) in [0, 1], valid (B, N, Q, Z) bool) -> (B, Q, D)``.
    """

    @staticmethod
    def hit_counts(valid: torch.Tensor) -> torch.Tensor:
        """``(B, Q)`` number of cameras in which a query has at least one valid anchor (``valid`` (B, N, Q, Z))."""
        return valid.any(dim=-1).sum(dim=1)

    def forward(self, query: torch.Tensor, query_pos: Optional[torch.Tensor], img_feats: torch.Tensor,
                reference_points: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        batch, num_query, dims = query.shape
        _, cams, feat_dims, height, width = img_feats.shape
        if feat_dims != dims or dims != self.embed_dims:
            raise ValueError(f'BEVSpatialCrossAttention: built for {self.embed_dims} channels, got queries with '
                             f'{dims} and image features with {feat_dims}; set the neck out_channels to embed_dims')
        if reference_points.shape[:3] != (batch, cams, num_query) or valid.shape != reference_points.shape[:4]:
            raise ValueError('BEVSpatialCrossAttention: reference_points must be (B, N, Q, Z, 2) and valid '
                             f'(B, N, Q, Z) for B={batch}, N={cams}, Q={num_query}; got '
                             f'{tuple(reference_points.shape)} and {tuple(valid.shape)}')
        attn_query = query if query_pos is None else query + query_pos
        hit = valid.any(dim=-1)                                                      # (B, N, Q)
        lengths = hit.sum(dim=-1)                                                    # (B, N)
        max_len = int(lengths.max()) if lengths.numel() else 0
        if max_len == 0:
            return query
        # stable sort puts each camera's hit queries first, in query order
        order = torch.sort((~hit).to(torch.uint8), dim=-1, stable=True).indices[..., :max_len]  # (B, N, L)
        keep = torch.arange(max_len, device=query.device) < lengths.unsqueeze(-1)   # (B, N, L)
        queries = _gather_rows(attn_query, order)                                    # (B, N, L, D)
        refs = torch.gather(reference_points, 2,
                            order[..., None, None].expand(-1, -1, -1, *reference_points.shape[3:]))
        value = img_feats.flatten(3).transpose(2, 3).reshape(batch * cams, height * width, dims)
        shapes = torch.tensor([[height, width]], device=query.device, dtype=torch.long)
        anchor_mask = torch.gather(valid, 2, order[..., None].expand(-1, -1, -1, valid.shape[-1]))
        out = self.sampler(queries.reshape(batch * cams, max_len, dims), value, shapes,
                           refs.reshape(batch * cams, max_len, *refs.shape[3:]),
                           anchor_mask.reshape(batch * cams, max_len, -1))
        out = out.view(batch, cams, max_len, dims) * keep.unsqueeze(-1).to(out.dtype)
        slots = out.new_zeros(batch, num_query, dims)
        slots = slots.scatter_add(1, order.reshape(batch, -1, 1).expand(-1, -1, dims), out.reshape(batch, -1, dims))
        count = hit.sum(dim=1).clamp_min(1).unsqueeze(-1).to(slots.dtype)           # (B, Q, 1)
        return query + self.dropout(self.output_proj(slots / count))
