"""Head-averaged attention that interpolates raw features (JAFAR, AnyUp), with a memory-lean exact path.

The official JAFAR cross-attention keeps only the head-averaged *weights* of an ``nn.MultiheadAttention``
and applies them to the raw values::

    out = mean_h softmax(Q_h K_h^T / sqrt(d)) @ V          Q_h: (Nq, d), K_h: (Nk, d), V: (Nk, C)

Materialising those weights costs ``B * heads * Nq * Nk`` floats (3.2 GB for a 448x448 output over 32x32 keys
in float32), and autograd keeps them for the backward pass. The ``lean`` implementation computes the same
quantity in chunks of queries with a bounded working set, and a custom autograd function recomputes each
chunk's softmax in the backward pass (as flash attention does) instead of storing it. Per chunk it averages the
probabilities over heads *before* multiplying by V, which needs ``heads`` times fewer multiply-adds than
running per-head attention and averaging the outputs.

Without autograd on CPU (float32/float64), one chunk is a single fused pass over buffers reused for every chunk
(:func:`fused_averaged_attention`): RMSNorm and the query projection (the norm's weight and ``1/sqrt(d)`` folded
into the projection matrix), the logits of all heads, the softmax in place, the head sum, and one matrix product
with ``V / H``; the probabilities exist only as one chunk's logit buffer. On CUDA the lean inference path uses
``scaled_dot_product_attention`` per chunk with ``V`` broadcast to every head, then the head mean
(:func:`sdpa_averaged_attention`): ``mean_h softmax(Q_h K_h^T) V = mean_h SDPA(Q_h, K_h, V)``.

The kernels live in :mod:`.attention_kernels`. The choice between the paths is the project-wide ``impl``
vocabulary (:mod:`.attention_impl`): 'auto' and 'torch' take the lean path above; 'reference' materialises the
full weight tensor, as the official code does (kept for comparison, parity tests and attention maps); None
follows the process-wide default (:func:`~.attention_impl.set_attn_impl`, env ``MMJAFAR_ATTN_IMPL``).
"""
import math
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .attention_impl import check_attn_impl, resolve_attn_impl
from .attention_kernels import (_chunk_len, _fused_ok, _LeanAveragedAttention, _LeanProjectedAttention, _mean_probs,
                                fused_averaged_attention, fused_projected_attention, sdpa_averaged_attention)
from .banded_norm_conv import norm_conv, norm_conv_fusable


def averaged_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, impl: Optional[str] = None,
                       chunk_elements: Optional[int] = None, bias: Optional[torch.Tensor] = None) -> torch.Tensor:
    """``mean_h softmax(q_h k_h^T) @ v``.

    Args:
        q: ``(B, H, Nq, d)`` queries, already scaled.
        k: ``(B, H, Nk, d)`` keys.
        v: ``(B, Nk, C)`` values shared by all heads.
        impl: 'auto' or 'torch' (lean: chunked, bounded memory, also in backward), 'reference' (materialised
            weights) or None (the process-wide default); see :mod:`.attention_impl`.
        chunk_elements: lean only: budget of one chunk of logits in elements (``B*H*n*Nk``).
        bias: optional additive logit bias ``(Nq, Nk)`` (e.g. ``-inf`` outside a window). With a bias the lean
            path chunks the forward pass only; autograd then keeps each chunk's weights.

    Returns:
        ``(B, Nq, C)`` in ``v``'s dtype after promotion with ``q``'s.
    """
    impl = resolve_attn_impl(impl, owner='averaged_attention')
    dtype = torch.promote_types(q.dtype, v.dtype)
    q, k, v = q.to(dtype), k.to(dtype), v.to(dtype)
    if impl == 'reference':
        return torch.matmul(_mean_probs(q, k, bias).to(dtype), v)
    chunk = _chunk_len(q.shape[0], q.shape[1], q.shape[2], k.shape[2], chunk_elements)
    grad = torch.is_grad_enabled() and (q.requires_grad or k.requires_grad or v.requires_grad)
    if grad and bias is None:
        return _LeanAveragedAttention.apply(q, k, v, chunk)
    if _fused_ok(q, k, v):
        return fused_averaged_attention(q, k, v, chunk_elements, bias)
    out = v.new_empty(q.shape[0], q.shape[2], v.shape[-1])
    for s in range(0, q.shape[2], chunk):
        probs = _mean_probs(q[:, :, s:s + chunk], k, None if bias is None else bias[s:s + chunk])
        out[:, s:s + chunk] = torch.matmul(probs.to(dtype), v)
    return out


class HeadAveragedCrossAttention(nn.Module):
    """RMSNorm on queries and keys, multi-head projections, head-averaged weights applied to raw values.

    Parameter names follow the official JAFAR ``CrossAttention`` (``norm_q``, ``norm_k``, ``norm_v`` and an
    ``nn.MultiheadAttention`` named ``attention``) so official checkpoints load strictly. The official forward
    never uses the value side of that attention (``norm_v``, ``v_proj_weight``, ``out_proj``, the value part of
    ``in_proj_bias``): those parameters are kept for checkpoint compatibility but frozen
    (``requires_grad=False``), so DDP needs no ``find_unused_parameters``.

    Args:
        query_dim: channels of queries (the attention's embedding size).
        key_dim: channels of keys (must equal ``query_dim``, as in the official module).
        value_dim: channels of the values (the backbone features).
        num_heads: attention heads.
        impl: 'auto', 'torch', 'reference' or None (the process-wide default); see :mod:`.attention_impl`. Also
            an attribute, read at each call.
        chunk_elements: working-set budget of the lean path (elements of one chunk of logits).
        value_norm: whether the (unused) ``norm_v`` RMSNorm exists, as in JAFAR (AnyUp has none).
        mha_value: what the naive path hands to ``nn.MultiheadAttention`` as its value input: 'value' (JAFAR:
            the normalised features, so ``value_dim`` is the feature width) or 'key' (AnyUp: the keys, so the
            attention is built with ``value_dim = query_dim`` and packed ``in_proj_weight``, and any feature
            width works). Either way only the weights are used.
    """

    def __init__(self, query_dim: int, key_dim: int, value_dim: int, num_heads: int, impl: Optional[str] = None,
                 chunk_elements: Optional[int] = None, value_norm: bool = True, mha_value: str = 'value') -> None:
        super().__init__()
        if mha_value not in ('value', 'key'):
            raise ValueError(f"mha_value must be 'value' or 'key', got {mha_value!r}")
        self.mha_value = mha_value
        if key_dim != query_dim:
            raise ValueError(f'key_dim ({key_dim}) must equal query_dim ({query_dim})')
        if query_dim % num_heads:
            raise ValueError(f'query_dim ({query_dim}) must be divisible by num_heads ({num_heads})')
        self.num_heads = num_heads
        self.impl = check_attn_impl(impl, owner='HeadAveragedCrossAttention')
        self.chunk_elements = chunk_elements
        self.norm_q = nn.RMSNorm(query_dim)
        self.norm_k = nn.RMSNorm(key_dim)
        self.norm_v = nn.RMSNorm(value_dim) if value_norm else nn.Identity()
        self.attention = nn.MultiheadAttention(query_dim, num_heads, dropout=0.0, batch_first=True,
                                               vdim=value_dim)
        unused = [*self.norm_v.parameters(), *self.attention.out_proj.parameters()]
        if self.attention.v_proj_weight is not None:
            unused.append(self.attention.v_proj_weight)
        for p in unused:
            p.requires_grad_(False)

    def _projection(self, index: int):
        attn, dim = self.attention, self.attention.embed_dim
        if attn.in_proj_weight is not None:  # packed projections (value_dim == query_dim)
            weight = attn.in_proj_weight[index * dim:(index + 1) * dim]
        else:
            weight = attn.q_proj_weight if index == 0 else attn.k_proj_weight
        return weight, attn.in_proj_bias[index * dim:(index + 1) * dim]

    def _split_heads(self, x: torch.Tensor) -> torch.Tensor:
        return x.view(x.shape[0], x.shape[1], self.num_heads, -1).transpose(1, 2)

    def project_queries(self, query: torch.Tensor) -> torch.Tensor:
        """``(B, Nq, Dq) -> (B, H, Nq, d)``: RMSNorm, projection, head split, pre-scaled by ``1/sqrt(d)``."""
        weight, bias = self._projection(0)
        head_dim = self.attention.embed_dim // self.num_heads
        return self._split_heads(F.linear(self.norm_q(query), weight, bias)) * (1.0 / math.sqrt(head_dim))

    def project_keys(self, key: torch.Tensor) -> torch.Tensor:
        """``(B, Nk, Dk) -> (B, H, Nk, d)``: RMSNorm, projection, head split."""
        weight, bias = self._projection(1)
        return self._split_heads(F.linear(self.norm_k(key), weight, bias))

    def project(self, query: torch.Tensor, key: torch.Tensor):
        """Normalised, projected, head-split queries (pre-scaled) and keys: ``(B, H, N, d)`` each."""
        return self.project_queries(query), self.project_keys(key)

    def attention_weights(self, query: torch.Tensor, key: torch.Tensor,
                          attn_bias: Optional[torch.Tensor] = None) -> torch.Tensor:
        """The full head-averaged weights ``(B, Nq, Nk)`` (materialised; for visualisation and tests)."""
        q, k = self.project(query, key)
        return _mean_probs(q, k, attn_bias)

    def forward(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                attn_bias: Optional[torch.Tensor] = None) -> torch.Tensor:
        """``(B, Nq, Dq), (B, Nk, Dk), (B, Nk, C) -> (B, Nq, C)``; ``attn_bias`` ``(Nq, Nk)`` is added to the logits."""
        # 'reference': the official path, nn.MultiheadAttention with need_weights=True
        if resolve_attn_impl(self.impl, owner='HeadAveragedCrossAttention') == 'reference':
            key_n = self.norm_k(key)
            mha_value = key_n if self.mha_value == 'key' else self.norm_v(value)
            mask = None if attn_bias is None else attn_bias.to(query.dtype)
            _, weights = self.attention(self.norm_q(query), key_n, mha_value, need_weights=True,
                                        average_attn_weights=True, attn_mask=mask)
            return torch.einsum('bij,bjd->bid', weights, value)
        k = self.project_keys(key)
        if torch.is_grad_enabled() and (query.requires_grad or key.requires_grad or value.requires_grad
                                        or any(p.requires_grad for p in self.parameters())):
            if (attn_bias is None and query.device.type == 'cpu' and not torch.is_autocast_enabled('cpu')
                    and query.dtype in (torch.float32, torch.float64)
                    and all(t.dtype == query.dtype for t in (k, value, *self.parameters()))):
                weight, bias = self._projection(0)
                chunk = _chunk_len(1, self.num_heads, query.shape[1], k.shape[2], self.chunk_elements)
                return _LeanProjectedAttention.apply(query, weight, bias, self.norm_q.weight, k, value,
                                                     self.num_heads, self.norm_q.eps, chunk)
            return averaged_attention(self.project_queries(query), k, value, impl='torch',
                                      chunk_elements=self.chunk_elements, bias=attn_bias)
        if _fused_ok(query, key, value) and all(p.dtype == query.dtype for p in self.parameters()):
            weight, bias = self._projection(0)
            chunk = _chunk_len(1, self.num_heads, query.shape[1], k.shape[2], self.chunk_elements)
            return fused_projected_attention(query, weight, bias, self.norm_q.weight, self.norm_q.eps, k, value,
                                             self.num_heads, chunk, attn_bias)
        if query.device.type == 'cuda':
            return sdpa_averaged_attention(self.project_queries(query), k, value, bias=attn_bias)
        # inference: normalise and project the queries chunk by chunk too (no full-size projected copies)
        chunk = _chunk_len(query.shape[0], self.num_heads, query.shape[1], k.shape[2], self.chunk_elements)
        out = None
        for s in range(0, query.shape[1], chunk):
            part = averaged_attention(self.project_queries(query[:, s:s + chunk]), k, value, impl='torch',
                                      chunk_elements=self.chunk_elements,
                                      bias=None if attn_bias is None else attn_bias[s:s + chunk])
            if out is None:
                out = part.new_empty(query.shape[0], query.shape[1], part.shape[-1])
            out[:, s:s + chunk] = part
        return out


class CrossAttentionBlock(nn.Module):
    """3x3 convolution on the query map, then :class:`HeadAveragedCrossAttention` (JAFAR's ``cross_decode``).

    ``forward(queries (B, Dq, Ho, Wo), keys (B, Dk, h, w), values (B, C, h, w)) -> (B, C, Ho, Wo)``; the output
    is returned in channels-last memory layout (no extra copy of the largest tensor).
    """

    def __init__(self, query_dim: int, key_dim: int, value_dim: int, num_heads: int, impl: Optional[str] = None,
                 chunk_elements: Optional[int] = None, value_norm: bool = True, mha_value: str = 'value') -> None:
        super().__init__()
        self.cross_attn = HeadAveragedCrossAttention(query_dim, key_dim, value_dim, num_heads, impl=impl,
                                                     chunk_elements=chunk_elements, value_norm=value_norm,
                                                     mha_value=mha_value)
        self.conv2d = nn.Conv2d(query_dim, query_dim, kernel_size=3, padding=1, bias=False)

    @staticmethod
    def tokens(x: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W) -> (B, H*W, C)``: a view for NCHW and for channels-last maps (then contiguous tokens)."""
        if x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
            return x.permute(0, 2, 3, 1).flatten(1, 2)
        return x.flatten(2).transpose(1, 2)

    def attention_weights(self, queries: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        """Head-averaged attention ``(B, Ho*Wo, h*w)`` (materialised)."""
        return self.cross_attn.attention_weights(self.tokens(self.conv2d(queries)), self.tokens(keys))

    def query_map(self, queries: torch.Tensor, query_norm: Optional[nn.Module] = None) -> torch.Tensor:
        """``conv2d(query_norm(queries))`` (``conv2d(queries)`` without a norm). In training on CPU with the lean
        attention, a GroupNorm and the convolution run as one banded function that keeps only ``queries`` for the
        backward pass (:mod:`.banded_norm_conv`)."""
        if query_norm is None:
            return self.conv2d(queries)
        if (torch.is_grad_enabled() and norm_conv_fusable(queries, query_norm, self.conv2d)
                and resolve_attn_impl(self.cross_attn.impl, owner='CrossAttentionBlock') != 'reference'):
            return norm_conv(queries, query_norm, self.conv2d)
        return self.conv2d(query_norm(queries))

    def forward(self, queries: torch.Tensor, keys: torch.Tensor, values: torch.Tensor,
                query_norm: Optional[nn.Module] = None) -> torch.Tensor:
        """``query_norm``: a module applied to ``queries`` before the convolution (JAFAR's GroupNorm)."""
        b, _, out_h, out_w = queries.shape
        out = self.cross_attn(self.tokens(self.query_map(queries, query_norm)), self.tokens(keys),
                              self.tokens(values))
        return out.view(b, out_h, out_w, -1).permute(0, 3, 1, 2)


def cross_attention_impl(kernels: Sequence[str] = ()) -> property:
    """The ``impl`` property of an upsampler whose attention is ``self.cross_decode.cross_attn`` (JAFAR, AnyUp):
    reads and writes the attention module's own ``impl``, so the upsampler and its attention never disagree."""

    def get(self) -> Optional[str]:
        return self.cross_decode.cross_attn.impl

    def set_(self, impl: Optional[str]) -> None:
        self.cross_decode.cross_attn.impl = check_attn_impl(impl, kernels, type(self).__name__)

    return property(get, set_, doc='attention implementation (see :mod:`~mmjafar.models.layers.attention_impl`)')
