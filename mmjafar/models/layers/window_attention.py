"""Attention restricted to separable 2-D windows, computed tile by tile (AnyUp's window mask, NAF's neighbourhoods).

A query at output pixel ``(i, j)`` of an ``H x W`` grid attends to keys ``(r, c)`` of an ``h x w`` grid with the
additive logit bias ``row_bias[i, r] + col_bias[j, c]``:

* ``0`` inside / ``-inf`` outside a window gives a masked attention (AnyUp's ``window_ratio`` mask);
* ``log m`` gives a key ``m`` times the weight, exactly as if it appeared ``m`` times in the softmax. This is how
  a neighbourhood over keys that were enlarged by nearest-neighbour interpolation is computed on the small grid
  (NAF, see :mod:`.neighborhood_attention`).

The dense result ``softmax(q k^T + bias) v`` never needs the ``Nq x Nk`` matrix: the query grid is cut into
rectangular tiles, and each tile only meets the rectangle of keys that any of its queries can see (every key
outside it has bias ``-inf`` for the whole tile, so dropping it changes nothing). Per tile this is a small dense
attention; the working set is bounded by ``chunk_elements`` whatever the output size.
"""
import math
from typing import List, Optional, Tuple

import torch

from .attention import CrossAttentionBlock
from .attention_impl import resolve_attn_impl
from .attention_kernels import attention_probs

#: Default working-set budget of one tile's logits, in elements (16 MiB in float32).
DEFAULT_TILE_ELEMENTS = 1 << 22


def ratio_window_bias(out_len: int, in_len: int, ratio: float, device=None) -> torch.Tensor:
    """``(out_len, in_len)`` bias, 0 on AnyUp's window of ``+- ratio`` around each output pixel centre, else -inf.

    Output index ``i`` has centre ``y = (i + 0.5) / out_len``; it sees input indices
    ``floor(clamp(y - ratio, 0, 1) * in_len)`` up to, not including, ``ceil(clamp(y + ratio, 0, 1) * in_len)``.
    The bounds are evaluated with float32 tensor operations in this order on the CPU, as the official code does:
    float32 rounding moves some bounds by one key compared with exact arithmetic, and reproducing the outputs
    needs the same rounding. ``ratio <= 0`` means no window (all zeros).
    """
    if ratio <= 0:
        return torch.zeros(out_len, in_len, device=device)
    centre = (torch.arange(out_len, dtype=torch.float32) + 0.5) / out_len
    start = ((centre - ratio).clamp(0.0, 1.0) * in_len).floor().long()
    stop = ((centre + ratio).clamp(0.0, 1.0) * in_len).ceil().long()
    index = torch.arange(in_len)
    inside = (index[None] >= start[:, None]) & (index[None] < stop[:, None])
    return torch.zeros(out_len, in_len).masked_fill(~inside, float('-inf')).to(device)


def dense_window_bias(row_bias: torch.Tensor, col_bias: torch.Tensor) -> torch.Tensor:
    """The full ``(H*W, h*w)`` bias of a separable window (row-major tokens), e.g. as ``attn_mask`` of
    ``nn.MultiheadAttention``. Materialises ``Nq x Nk`` values: for the reference path and tests."""
    bias = row_bias[:, None, :, None] + col_bias[None, :, None, :]
    return bias.reshape(row_bias.shape[0] * col_bias.shape[0], row_bias.shape[1] * col_bias.shape[1])


def _axis_extents(bias: torch.Tensor, axis: str) -> Tuple[List[int], List[int]]:
    """First and one-past-last key index with a finite bias, for every query index of one axis."""
    finite = torch.isfinite(bias).cpu()
    if not finite.any(dim=1).all():
        empty = (~finite.any(dim=1)).nonzero()[0].item()
        raise ValueError(f'window attention: query {axis} {empty} sees no key (its bias row is all -inf)')
    index = torch.arange(bias.shape[1])
    lo = torch.where(finite, index, bias.shape[1]).amin(dim=1)
    hi = torch.where(finite, index, -1).amax(dim=1) + 1
    return lo.tolist(), hi.tolist()


def window_tiles(bias: torch.Tensor, axis: str = 'row', growth: float = 1.5) -> List[Tuple[int, int, int, int]]:
    """Cut one axis of the query grid into blocks ``(q0, q1, k0, k1)``: queries ``q0:q1`` see keys within ``k0:k1``.

    Blocks grow greedily while the union of their key ranges stays within ``growth`` times the widest single
    range, which keeps the wasted (masked) part of each tile's logits small.
    """
    lo, hi = _axis_extents(bias, axis)
    limit = max(1, math.ceil(growth * max(b - a for a, b in zip(lo, hi))))
    blocks, start, k0, k1 = [], 0, lo[0], hi[0]
    for i in range(1, len(lo)):
        n0, n1 = min(k0, lo[i]), max(k1, hi[i])
        if n1 - n0 > limit:
            blocks.append((start, i, k0, k1))
            start, n0, n1 = i, lo[i], hi[i]
        k0, k1 = n0, n1
    blocks.append((start, len(lo), k0, k1))
    return blocks


def windowed_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, row_bias: torch.Tensor,
                       col_bias: torch.Tensor, average_heads: bool,
                       chunk_elements: Optional[int] = None) -> torch.Tensor:
    """Exact ``softmax(q k^T + row_bias (+) col_bias) v`` over a 2-D key grid, tile by tile.

    Args:
        q: ``(B, n, H, W, d)`` queries (already scaled), ``n`` heads.
        k: ``(B, n, h, w, d)`` keys.
        v: ``(B, h, w, C)`` values shared by all heads when ``average_heads``, else ``(B, n, h, w, C)`` (one
            value block per head).
        row_bias: ``(H, h)`` additive logit bias of query rows against key rows.
        col_bias: ``(W, w)`` the same for columns.
        average_heads: True: weights averaged over heads, then applied to the shared values (JAFAR/AnyUp);
            False: every head applies its own weights to its own values (NAF).
        chunk_elements: budget of one piece of logits in elements (``B * n * queries * keys``).

    Returns:
        ``(B, H, W, C)`` when averaging heads, else ``(B, H, W, n * C)`` (head-major channels).
    """
    b, heads, out_h, out_w, _ = q.shape
    dtype = torch.promote_types(q.dtype, v.dtype)
    budget = DEFAULT_TILE_ELEMENTS if chunk_elements is None else chunk_elements
    row_bias, col_bias = row_bias.to(q.device), col_bias.to(q.device)
    out_c = v.shape[-1] if average_heads else heads * v.shape[-1]
    out = v.new_empty(b, out_h, out_w, out_c, dtype=dtype)
    for r0, r1, kr0, kr1 in window_tiles(row_bias, 'row'):
        for c0, c1, kc0, kc1 in window_tiles(col_bias, 'column'):
            keys = k[:, :, kr0:kr1, kc0:kc1].flatten(2, 3)  # (B, n, K, d)
            values = v[..., kr0:kr1, kc0:kc1, :].flatten(-3, -2).to(dtype)  # (B, [n,] K, C)
            bias = (row_bias[r0:r1, None, kr0:kr1, None] + col_bias[None, c0:c1, None, kc0:kc1])
            bias = bias.reshape((r1 - r0) * (c1 - c0), keys.shape[2])
            queries = q[:, :, r0:r1, c0:c1].flatten(2, 3)  # (B, n, Q, d)
            step = max(1, budget // max(1, b * heads * keys.shape[2]))
            tile = []
            for s in range(0, queries.shape[2], step):
                probs = attention_probs(queries[:, :, s:s + step], keys, bias[s:s + step])
                if average_heads:
                    tile.append(torch.matmul(probs.mean(dim=1).to(dtype), values))  # (B, Q', C)
                else:
                    part = torch.matmul(probs.to(dtype), values)  # (B, n, Q', C)
                    tile.append(part.transpose(1, 2).flatten(2))
            out[:, r0:r1, c0:c1] = torch.cat(tile, dim=1).view(b, r1 - r0, c1 - c0, out_c)
    return out


class WindowedCrossAttentionBlock(CrossAttentionBlock):
    """:class:`CrossAttentionBlock` whose queries see only a separable window of the keys (AnyUp's ``cross_decode``).

    Same parameters (hence checkpoint keys) as its parent. ``forward(queries (B, Dq, Ho, Wo), keys (B, Dk, h, w),
    values (B, C, h, w), row_bias (Ho, h), col_bias (Wo, w)) -> (B, C, Ho, Wo)``: ``impl='reference'`` runs the
    official ``nn.MultiheadAttention`` with the dense bias as ``attn_mask``; 'auto' / 'torch' project with the same
    weights and runs :func:`windowed_attention`, exact to the dense result, never holding ``Nq x Nk`` values.
    """

    def forward(self, queries: torch.Tensor, keys: torch.Tensor, values: torch.Tensor,
                row_bias: Optional[torch.Tensor] = None, col_bias: Optional[torch.Tensor] = None) -> torch.Tensor:
        if row_bias is None or col_bias is None:
            return super().forward(queries, keys, values)
        b, _, out_h, out_w = queries.shape
        h, w = keys.shape[-2:]
        attn = self.cross_attn
        q_tokens, k_tokens = self.tokens(self.conv2d(queries)), self.tokens(keys)
        if resolve_attn_impl(attn.impl) == 'reference':
            bias = dense_window_bias(row_bias, col_bias).to(queries.device)
            out = attn(q_tokens, k_tokens, self.tokens(values), attn_bias=bias)
            return out.view(b, out_h, out_w, -1).permute(0, 3, 1, 2)
        q, k = attn.project(q_tokens, k_tokens)  # (B, n, N, d), queries pre-scaled
        q = q.unflatten(2, (out_h, out_w))
        k = k.unflatten(2, (h, w))
        out = windowed_attention(q, k, values.permute(0, 2, 3, 1), row_bias, col_bias, average_heads=True,
                                 chunk_elements=attn.chunk_elements)
        return out.permute(0, 3, 1, 2)

    def attention_weights(self, queries: torch.Tensor, keys: torch.Tensor, row_bias: Optional[torch.Tensor] = None,
                          col_bias: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Head-averaged weights ``(B, Ho*Wo, h*w)`` with the window applied (materialised; for visualisation)."""
        bias = None if row_bias is None else dense_window_bias(row_bias, col_bias).to(queries.device)
        return self.cross_attn.attention_weights(self.tokens(self.conv2d(queries)), self.tokens(keys), bias)
