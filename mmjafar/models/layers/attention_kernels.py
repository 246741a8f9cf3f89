"""Kernels of head-averaged attention ``mean_h softmax(Q_h K_h^T) @ V``: chunk helpers, autograd functions and
fused CPU/SDPA inference passes.

:mod:`.attention` picks among them (see its docstring for the math and the memory argument); this module holds
only the computations, so that they can be tuned without touching the modules and their dispatch:

* :class:`_LeanAveragedAttention`: chunked exact forward whose backward recomputes each chunk's probabilities;
* :func:`fused_averaged_attention`: inference-only, one fused pass per chunk over reused buffers
  (:class:`_ChunkWorkspace`), CPU float32/float64;
* :func:`fused_projected_attention` / :class:`_LeanProjectedAttention`: the same with the queries' RMSNorm and
  projection folded into the chunk loop (inference / training);
* :func:`sdpa_averaged_attention`: ``F.scaled_dot_product_attention`` per chunk with ``V`` broadcast to the heads.
"""
import math
from typing import Optional

import torch
import torch.nn.functional as F

#: Default working-set budget of one chunk of attention logits, in elements (16 MiB in float32).
DEFAULT_CHUNK_ELEMENTS = 1 << 22


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


def fused_projected_attention(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
                              norm_weight: Optional[torch.Tensor], eps: Optional[float], k: torch.Tensor,
                              v: torch.Tensor, heads: int, chunk: int,
                              attn_bias: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Inference: per chunk of queries, RMSNorm + projection into a reused buffer, then
    :meth:`_ChunkWorkspace.attend`. The RMSNorm weight and ``1/sqrt(d)`` are folded into the projection.

    ``x`` ``(B, Nq, D)`` raw query tokens, ``weight``/``bias`` the query projection ``(D, D)``/``(D,)``,
    ``norm_weight``/``eps`` the RMSNorm's, ``k`` ``(B, H, Nk, d)`` projected keys, ``v`` ``(B, Nk, C)``, ``chunk``
    queries per chunk, ``attn_bias`` ``(Nq, Nk)``. Returns ``(B, Nq, C)``.
    """
    b, num_q, dim = x.shape
    head_dim = dim // heads
    scale = 1.0 / math.sqrt(head_dim)
    w = weight if norm_weight is None else weight * norm_weight
    w_heads = (w * scale).view(heads, head_dim, dim).transpose(1, 2).contiguous()  # (H, D, d)
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
            ws.attend(qh, kt[i], v_over_h[i], out[i, s:e], None if attn_bias is None else attn_bias[s:e])
    return out


class _LeanProjectedAttention(torch.autograd.Function):
    """Training counterpart of :func:`fused_projected_attention`: RMSNorm, query projection and
    head-averaged attention in one function that saves only the raw query tokens (not the normalised or projected
    copies) and recomputes everything per chunk in the backward pass, with the RMSNorm, projection and softmax
    gradients written by hand. CPU float32/float64 without autocast."""

    @staticmethod
    def forward(ctx, x, weight, bias, norm_weight, k, v, heads, eps, chunk):
        ctx.save_for_backward(x, weight, bias, norm_weight, k, v)
        ctx.heads, ctx.eps, ctx.chunk = heads, eps, chunk
        return fused_projected_attention(x, weight, bias, norm_weight, eps, k, v, heads, chunk)

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
