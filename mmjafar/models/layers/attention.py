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

The ``naive`` implementation materialises the full weight tensor, as the official code does; it is kept for
comparison and parity tests. The default comes from the environment variable ``MMJAFAR_ATTN_IMPL``
('lean' unless set).
"""
import math
import os
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

ATTN_IMPLS = ('lean', 'naive')
#: Default implementation for modules built with ``impl=None``.
DEFAULT_IMPL = os.environ.get('MMJAFAR_ATTN_IMPL', 'lean')
#: Default working-set budget of one chunk of attention logits, in elements (16 MiB in float32).
DEFAULT_CHUNK_ELEMENTS = 1 << 22


def _check_impl(impl: Optional[str]) -> str:
    impl = DEFAULT_IMPL if impl is None else impl
    if impl not in ATTN_IMPLS:
        raise ValueError(f"attention impl must be one of {ATTN_IMPLS}, got {impl!r}")
    return impl


def _chunk_len(batch: int, heads: int, num_queries: int, num_keys: int, chunk_elements: Optional[int]) -> int:
    budget = DEFAULT_CHUNK_ELEMENTS if chunk_elements is None else chunk_elements
    return max(1, min(num_queries, budget // max(1, batch * heads * num_keys)))


def attention_probs(q: torch.Tensor, k: torch.Tensor, bias: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Per-head softmax ``(B, H, n, Nk)`` of the logits ``q @ k^T (+ bias)``, in float32 at least.

    ``bias`` is an additive logit bias broadcasting to ``(B, H, n, Nk)`` (``-inf`` masks a key out).
    """
    logits = torch.matmul(q, k.transpose(-1, -2))
    if bias is not None:
        logits = logits + bias
    return torch.softmax(logits, dim=-1, dtype=torch.promote_types(logits.dtype, torch.float32))


def _mean_probs(q: torch.Tensor, k: torch.Tensor, bias: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Head-averaged softmax ``(B, n, Nk)`` of the logits ``q @ k^T (+ bias)`` (softmax in float32 at least)."""
    return attention_probs(q, k, bias).mean(dim=1)


class _LeanAveragedAttention(torch.autograd.Function):
    """Chunked exact head-averaged attention whose backward recomputes the probabilities chunk by chunk."""

    @staticmethod
    def forward(ctx, q, k, v, chunk):
        ctx.save_for_backward(q, k, v)
        ctx.chunk = chunk
        out = v.new_empty(q.shape[0], q.shape[2], v.shape[-1])
        for s in range(0, q.shape[2], chunk):
            out[:, s:s + chunk] = torch.matmul(_mean_probs(q[:, :, s:s + chunk], k).to(v.dtype), v)
        return out

    @staticmethod
    def backward(ctx, grad_out):
        q, k, v = ctx.saved_tensors
        chunk, heads = ctx.chunk, q.shape[1]
        grad_q = torch.empty_like(q) if ctx.needs_input_grad[0] else None
        grad_k = torch.zeros_like(k, dtype=torch.promote_types(k.dtype, torch.float32))
        grad_v = torch.zeros_like(v, dtype=torch.promote_types(v.dtype, torch.float32))
        work = torch.promote_types(q.dtype, torch.float32)
        for s in range(0, q.shape[2], chunk):
            q_c = q[:, :, s:s + chunk]
            g_c = grad_out[:, s:s + chunk]
            probs = torch.softmax(torch.matmul(q_c, k.transpose(-1, -2)), dim=-1, dtype=work)  # (B,H,n,Nk)
            grad_v += torch.matmul(probs.mean(dim=1).transpose(1, 2), g_c.to(work))
            # d out / d probs_h = (g @ v^T) / H for every head; softmax backward per head.
            grad_p = torch.matmul(g_c.to(work), v.to(work).transpose(1, 2)).unsqueeze(1) / heads
            grad_logits = probs * (grad_p - (probs * grad_p).sum(dim=-1, keepdim=True))
            del probs, grad_p
            if grad_q is not None:
                grad_q[:, :, s:s + chunk] = torch.matmul(grad_logits, k.to(work)).to(q.dtype)
            grad_k += torch.matmul(grad_logits.transpose(-1, -2), q_c.to(work))
        return grad_q, grad_k.to(k.dtype), grad_v.to(v.dtype), None


def _fused_ok(*tensors: torch.Tensor) -> bool:
    """Whether the fused CPU inference chunk applies: CPU float32/float64 tensors, no autograd, no autocast."""
    t = tensors[0]
    if t.device.type != 'cpu' or torch.is_autocast_enabled('cpu'):
        return False
    if any(x.dtype != t.dtype or x.dtype not in (torch.float32, torch.float64) for x in tensors):
        return False
    return not (torch.is_grad_enabled() and any(x.requires_grad for x in tensors))


class _ChunkWorkspace:
    """Buffers of one attention chunk, reused by every chunk of a call (no allocation per chunk)."""

    def __init__(self, like: torch.Tensor, heads: int, chunk: int, num_keys: int) -> None:
        self.logits = like.new_empty(heads * chunk * num_keys)
        self.probs = like.new_empty(chunk * num_keys)

    def attend(self, qh: torch.Tensor, kt: torch.Tensor, v_over_h: torch.Tensor, out: torch.Tensor,
               bias: Optional[torch.Tensor] = None) -> None:
        """``out = sum_h softmax(qh_h @ kt_h + bias) @ v_over_h`` for one chunk; ``qh`` ``(H, n, d)``, ``kt``
        ``(H, d, Nk)``, ``v_over_h`` ``(Nk, C)`` (already divided by ``H``), ``out`` ``(n, C)`` (written)."""
        heads, n, num_keys = qh.shape[0], qh.shape[1], kt.shape[-1]
        logits = self.logits[:heads * n * num_keys].view(heads, n, num_keys)
        torch.bmm(qh, kt, out=logits)
        if bias is not None:
            logits.add_(bias)
        torch.ops.aten._softmax.out(logits, -1, False, out=logits)  # in place, row by row (cache-resident)
        probs = self.probs[:n * num_keys].view(n, num_keys)
        torch.add(logits[0], logits[1], out=probs) if heads > 1 else probs.copy_(logits[0])
        for h in range(2, heads):
            probs.add_(logits[h])
        torch.mm(probs, v_over_h, out=out)


def fused_averaged_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                             chunk_elements: Optional[int] = None, bias: Optional[torch.Tensor] = None,
                             out: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Inference-only :func:`averaged_attention` (lean), one fused pass per chunk over reused buffers.

    Same arguments and result as :func:`averaged_attention`; ``q``, ``k``, ``v`` share a float dtype. The heads'
    probabilities are summed (not averaged) and multiplied by ``v / H``, which is exact for a power-of-two ``H``.
    """
    b, heads, num_q, _ = q.shape
    num_k = k.shape[2]
    chunk = _chunk_len(1, heads, num_q, num_k, chunk_elements)
    out = v.new_empty(b, num_q, v.shape[-1]) if out is None else out
    kt = k.transpose(-1, -2).contiguous()
    v_over_h = v * (1.0 / heads)
    ws = _ChunkWorkspace(q, heads, chunk, num_k)
    for i in range(b):
        for s in range(0, num_q, chunk):
            e = min(num_q, s + chunk)
            ws.attend(q[i, :, s:e], kt[i], v_over_h[i], out[i, s:e], None if bias is None else bias[s:e])
    return out


def sdpa_averaged_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, chunk_queries: int = 1 << 14,
                            bias: Optional[torch.Tensor] = None) -> torch.Tensor:
    """:func:`averaged_attention` through ``F.scaled_dot_product_attention`` (fused kernels on CUDA).

    ``mean_h softmax(q_h k_h^T + bias) @ v`` equals the head mean of per-head SDPA with ``v`` broadcast to every
    head (``scale=1``: ``q`` is pre-scaled). Queries go in chunks of ``chunk_queries`` so that the per-head
    outputs ``(B, H, n, C)`` stay bounded. Used by the lean path on CUDA without autograd.
    """
    b, heads, num_q, _ = q.shape
    dtype = torch.promote_types(q.dtype, v.dtype)
    q, k, v = q.to(dtype), k.to(dtype), v.to(dtype)
    vh = v.unsqueeze(1).expand(b, heads, *v.shape[1:])
    out = v.new_empty(b, num_q, v.shape[-1])
    for s in range(0, num_q, chunk_queries):
        e = min(num_q, s + chunk_queries)
        mask = None if bias is None else bias[s:e].to(dtype)
        part = F.scaled_dot_product_attention(q[:, :, s:e], k, vh, attn_mask=mask, scale=1.0)
        torch.mean(part, dim=1, out=out[:, s:e]) if b == 1 else out[:, s:e].copy_(part.mean(dim=1))
    return out


class _LeanProjectedAttention(torch.autograd.Function):
    """Training counterpart of :meth:`HeadAveragedCrossAttention._fused_inference`: RMSNorm, query projection and
    head-averaged attention in one function that saves only the raw query tokens (not the normalised or projected
    copies) and recomputes everything per chunk in the backward pass, with the RMSNorm, projection and softmax
    gradients written by hand. CPU float32/float64 without autocast."""

    @staticmethod
    def forward(ctx, x, weight, bias, norm_weight, k, v, heads, eps, chunk):
        ctx.save_for_backward(x, weight, bias, norm_weight, k, v)
        ctx.heads, ctx.eps, ctx.chunk = heads, eps, chunk
        b, num_q, dim = x.shape
        head_dim = dim // heads
        scale = 1.0 / math.sqrt(head_dim)
        w = weight if norm_weight is None else weight * norm_weight
        w_heads = (w * scale).view(heads, head_dim, dim).transpose(1, 2).contiguous()
        b_heads = (bias * scale).view(heads, 1, head_dim)
        kt = k.transpose(-1, -2).contiguous()
        v_over_h = v * (1.0 / heads)
        ws = _ChunkWorkspace(x, heads, chunk, k.shape[2])
        qh_buf = x.new_empty(heads * chunk * head_dim)
        out = v.new_empty(b, num_q, v.shape[-1])
        for i in range(b):
            for s in range(0, num_q, chunk):
                e = min(num_q, s + chunk)
                xn = F.rms_norm(x[i, s:e], (dim, ), None, eps)
                qh = qh_buf[:heads * (e - s) * head_dim].view(heads, e - s, head_dim)
                torch.baddbmm(b_heads, xn.expand(heads, e - s, dim), w_heads, out=qh)
                ws.attend(qh, kt[i], v_over_h[i], out[i, s:e])
        return out

    @staticmethod
    def backward(ctx, grad_out):
        x, weight, bias, norm_weight, k, v = ctx.saved_tensors
        heads, chunk = ctx.heads, ctx.chunk
        eps = torch.finfo(x.dtype).eps if ctx.eps is None else ctx.eps
        b, num_q, dim = x.shape
        head_dim, num_k = dim // heads, k.shape[2]
        scale = 1.0 / math.sqrt(head_dim)
        need_x, need_w, need_b, need_g, need_k, need_v = ctx.needs_input_grad[:6]
        grad_x = torch.empty_like(x) if need_x else None
        grad_w, grad_b = torch.zeros_like(weight), torch.zeros_like(bias)
        grad_g = None if norm_weight is None else torch.zeros_like(norm_weight)
        grad_k, grad_v = torch.zeros_like(k), torch.zeros_like(v)
        kt = k.transpose(-1, -2).contiguous()
        probs_buf = x.new_empty(heads * chunk * num_k)
        tmp_buf = x.new_empty(heads * chunk * num_k)
        for i in range(b):
            for s in range(0, num_q, chunk):
                e = min(num_q, s + chunk)
                n = e - s
                xc = x[i, s:e]
                rstd = torch.rsqrt(xc.pow(2).mean(-1, keepdim=True) + eps)
                xn = xc * rstd
                xg = xn if norm_weight is None else xn * norm_weight
                q = torch.addmm(bias, xg, weight.t()).mul_(scale)  # (n, D)
                qh = q.view(n, heads, head_dim).transpose(0, 1)  # (H, n, d)
                probs = probs_buf[:heads * n * num_k].view(heads, n, num_k)
                torch.bmm(qh, kt[i], out=probs)
                torch.ops.aten._softmax.out(probs, -1, False, out=probs)
                g_c = grad_out[i, s:e]
                grad_v[i].addmm_(probs.sum(0).t(), g_c, alpha=1.0 / heads)
                # d out / d probs_h = (g @ v^T) / H for every head; softmax backward per head, in place
                grad_p = torch.mm(g_c, v[i].t()).mul_(1.0 / heads)  # (n, Nk)
                tmp = tmp_buf[:heads * n * num_k].view(heads, n, num_k)
                torch.mul(probs, grad_p, out=tmp)
                dot = tmp.sum(-1, keepdim=True)
                torch.sub(grad_p, dot, out=tmp)
                grad_logits = probs.mul_(tmp)
                grad_k[i].baddbmm_(grad_logits.transpose(1, 2), qh)
                grad_q = torch.bmm(grad_logits, k[i]).transpose(0, 1).reshape(n, dim).mul_(scale)  # (n, D)
                grad_w.addmm_(grad_q.t(), xg)
                grad_b += grad_q.sum(0)
                if need_x or need_g:
                    grad_xg = torch.mm(grad_q, weight)
                    if norm_weight is not None:
                        grad_g += (grad_xg * xn).sum(0)
                        grad_xg.mul_(norm_weight)
                    if need_x:  # RMSNorm: dx = rstd * (g - xn * mean(g * xn))
                        mean_gx = (grad_xg * xn).mean(-1, keepdim=True)
                        grad_x[i, s:e] = rstd * (grad_xg - xn * mean_gx)
        return (grad_x, grad_w if need_w else None, grad_b if need_b else None, grad_g if need_g else None,
                grad_k if need_k else None, grad_v if need_v else None, None, None, None)


def averaged_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, impl: Optional[str] = None,
                       chunk_elements: Optional[int] = None, bias: Optional[torch.Tensor] = None) -> torch.Tensor:
    """``mean_h softmax(q_h k_h^T) @ v``.

    Args:
        q: ``(B, H, Nq, d)`` queries, already scaled.
        k: ``(B, H, Nk, d)`` keys.
        v: ``(B, Nk, C)`` values shared by all heads.
        impl: 'lean' (chunked, bounded memory, also in backward) or 'naive' (materialised weights).
        chunk_elements: lean only: budget of one chunk of logits in elements (``B*H*n*Nk``).
        bias: optional additive logit bias ``(Nq, Nk)`` (e.g. ``-inf`` outside a window). With a bias the lean
            path chunks the forward pass only; autograd then keeps each chunk's weights.

    Returns:
        ``(B, Nq, C)`` in ``v``'s dtype after promotion with ``q``'s.
    """
    impl = _check_impl(impl)
    dtype = torch.promote_types(q.dtype, v.dtype)
    q, k, v = q.to(dtype), k.to(dtype), v.to(dtype)
    if impl == 'naive':
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
        impl: 'lean', 'naive' or None (module default, see :data:`DEFAULT_IMPL`).
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
        self.impl = None if impl is None else _check_impl(impl)
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

    def _fused_inference(self, query: torch.Tensor, k: torch.Tensor, value: torch.Tensor,
                         attn_bias: Optional[torch.Tensor]) -> torch.Tensor:
        """CPU inference: per chunk of queries, RMSNorm + projection into a reused buffer, then
        :meth:`_ChunkWorkspace.attend`. The RMSNorm weight and ``1/sqrt(d)`` are folded into the projection."""
        b, num_q, dim = query.shape
        heads, num_k = self.num_heads, k.shape[2]
        head_dim = dim // heads
        weight, bias = self._projection(0)
        scale = 1.0 / math.sqrt(head_dim)
        if self.norm_q.weight is not None:
            weight = weight * self.norm_q.weight
        w_heads = (weight * scale).view(heads, head_dim, dim).transpose(1, 2).contiguous()  # (H, D, d)
        b_heads = (bias * scale).view(heads, 1, head_dim)
        chunk = _chunk_len(1, heads, num_q, num_k, self.chunk_elements)
        kt = k.transpose(-1, -2).contiguous()
        v_over_h = value * (1.0 / heads)
        ws = _ChunkWorkspace(query, heads, chunk, num_k)
        qh_buf = query.new_empty(heads * chunk * head_dim)
        out = value.new_empty(b, num_q, value.shape[-1])
        for i in range(b):
            for s in range(0, num_q, chunk):
                e = min(num_q, s + chunk)
                xn = F.rms_norm(query[i, s:e], (dim, ), None, self.norm_q.eps)
                qh = qh_buf[:heads * (e - s) * head_dim].view(heads, e - s, head_dim)
                torch.baddbmm(b_heads, xn.expand(heads, e - s, dim), w_heads, out=qh)
                ws.attend(qh, kt[i], v_over_h[i], out[i, s:e], None if attn_bias is None else attn_bias[s:e])
        return out

    def forward(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                attn_bias: Optional[torch.Tensor] = None) -> torch.Tensor:
        """``(B, Nq, Dq), (B, Nk, Dk), (B, Nk, C) -> (B, Nq, C)``; ``attn_bias`` ``(Nq, Nk)`` is added to the logits."""
        impl = _check_impl(self.impl)
        if impl == 'naive':  # the official path: nn.MultiheadAttention with need_weights=True
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
            return averaged_attention(self.project_queries(query), k, value, impl='lean',
                                      chunk_elements=self.chunk_elements, bias=attn_bias)
        if _fused_ok(query, key, value) and all(p.dtype == query.dtype for p in self.parameters()):
            return self._fused_inference(query, k, value, attn_bias)
        if query.device.type == 'cuda':
            return sdpa_averaged_attention(self.project_queries(query), k, value, bias=attn_bias)
        # inference: normalise and project the queries chunk by chunk too (no full-size projected copies)
        chunk = _chunk_len(query.shape[0], self.num_heads, query.shape[1], k.shape[2], self.chunk_elements)
        out = None
        for s in range(0, query.shape[1], chunk):
            part = averaged_attention(self.project_queries(query[:, s:s + chunk]), k, value, impl='lean',
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

    def forward(self, queries: torch.Tensor, keys: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        b, _, out_h, out_w = queries.shape
        out = self.cross_attn(self.tokens(self.conv2d(queries)), self.tokens(keys), self.tokens(values))
        return out.view(b, out_h, out_w, -1).permute(0, 3, 1, 2)
