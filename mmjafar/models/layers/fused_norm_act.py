"""Training-time fused ``GroupNorm -> SiLU -> (1x1 conv | average pooling)`` on CPU, with hand-written backward.

Activation checkpointing of such a group keeps only its input, but its backward pass still recomputes and holds
the normalised, activated and convolved (or pooled) maps at full resolution, plus their gradients: four or five
full-size maps at once. The autograd functions here save what checkpointing saves (the input and the group
statistics) and run forward and backward as chunked passes over the ``(B, H*W, C)`` token matrix of the map
(channels-last memory, no copy), so the only full-size tensor a backward pass allocates is the input gradient:

* backward pass 1 recomputes ``a = x * scale + shift`` and ``silu(a)`` per chunk, gets ``dL/dsilu`` from the
  consumer (the 1x1 convolution's weight, or the transposed pooling), accumulates the consumer's and the
  GroupNorm's parameter gradients and the two GroupNorm reduction terms, and writes ``dL/dx_hat`` into the
  input-gradient buffer;
* pass 2 turns that buffer into ``dL/dx`` in place.

Adaptive average pooling is written as two small matrices (rows and columns; window bounds as in
``F.adaptive_avg_pool2d``), so its forward accumulates per band of image rows and its backward spreads the pooled
gradient back band by band. Results equal the layer-by-layer computation up to float rounding (tested with
``gradcheck`` in float64). Used by :mod:`.conv_blocks` in training on CPU (see :func:`norm_act_conv_fusable`).
"""
from typing import Callable, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from . import fused_encoder  # its ENABLED switch governs these passes too
from .fused_encoder import _StatsAccumulator, is_pointwise_conv

Size = Tuple[int, int]

#: Elements of one chunk of the training passes here and in :mod:`.fused_block` (2 MiB in float32). Smaller than
#: the inference passes' (:data:`.fused_encoder.CHUNK_ELEMENTS`): a backward pass holds about ten chunk-size
#: temporaries next to the full-size maps, and 1x1 convolutions of 4k tokens still run at full matmul speed.
CHUNK_ELEMENTS = 1 << 19


def _chunk_rows(count: int, channels: int, align: int = 1) -> List[slice]:
    """Token slices of about ``CHUNK_ELEMENTS / channels`` tokens, each a multiple of ``align`` (a row width)."""
    step = max(1, CHUNK_ELEMENTS // max(1, channels * align)) * align
    return [slice(s, min(count, s + step)) for s in range(0, count, step)]


def _token_view(x: torch.Tensor) -> torch.Tensor:
    b, c, h, w = x.shape
    t = x.permute(0, 2, 3, 1)
    return (t if t.is_contiguous() else t.contiguous()).view(b, h * w, c)


def _as_map(tokens: torch.Tensor, height: int, width: int) -> torch.Tensor:
    return tokens.view(tokens.shape[0], height, width, -1).permute(0, 3, 1, 2)


def _silu_grad_(g: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """``g * silu'(a)`` written into ``g``; ``a`` is overwritten."""
    sig = torch.sigmoid(a)
    return g.mul_(sig.mul_(a.mul_(1 - sig).add_(1)))


def _group_means(sum_g: torch.Tensor, sum_gx: torch.Tensor, groups: int, count: int, dtype: torch.dtype):
    """Per-(batch, channel) group means of ``dL/dx_hat`` and ``dL/dx_hat * x_hat`` from per-channel sums."""
    b, c = sum_g.shape
    n = count * (c // groups)
    return tuple((t.view(b, groups, -1).sum(-1) / n).repeat_interleave(c // groups, dim=1).to(dtype)
                 for t in (sum_g, sum_gx))


def _coefficients_from_sums(sums, gamma, beta, groups: int, eps: float, count: int, dtype: torch.dtype):
    s1, s2 = sums
    b, c = s1.shape
    n = count * (c // groups)
    mean = s1.view(b, groups, -1).sum(-1) / n
    var = (s2.view(b, groups, -1).sum(-1) / n - mean * mean).clamp_min(0)
    rstd = torch.rsqrt(var + eps)
    mean_c, rstd_c = (t.repeat_interleave(c // groups, dim=1) for t in (mean, rstd))
    scale = (rstd_c * gamma.double()).to(dtype)
    shift = (beta.double() - mean_c * rstd_c * gamma.double()).to(dtype)
    return mean_c.to(dtype), rstd_c.to(dtype), scale, shift


def _norm_grad_terms(ga: torch.Tensor, xhat: torch.Tensor, gamma: torch.Tensor, acc) -> torch.Tensor:
    """GroupNorm backward, first pass over one chunk: from ``ga = dL/d(affine output)`` accumulate
    ``dL/dgamma``, ``dL/dbeta`` and the two reduction terms into ``acc = (grad_gamma, grad_beta, sum_g, sum_gx)``;
    returns ``dL/dx_hat`` (written over ``ga``)."""
    grad_gamma, grad_beta, sum_g, sum_gx = acc
    grad_gamma += (ga * xhat).sum(0)
    grad_beta += ga.sum(0)
    gxhat = ga.mul_(gamma)
    sum_g += gxhat.sum(0)
    sum_gx += (gxhat * xhat).sum(0)
    return gxhat


def _norm_coefficients(tokens: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, groups: int, eps: float,
                       chunks: Sequence[slice]) -> Tuple[torch.Tensor, ...]:
    """Per-(batch, channel) ``mean``, ``rstd`` and the folded ``scale``, ``shift`` (``GroupNorm(x) = x * scale +
    shift``) of a token matrix, statistics combined in float64."""
    b, count, c = tokens.shape
    acc = _StatsAccumulator(b, c, tokens.device)
    for i in range(b):
        for r in chunks:
            acc.add(i, tokens[i, r])
    return _coefficients_from_sums(acc.result(), gamma, beta, groups, eps, count, tokens.dtype)


def _norm_act_backward(tokens: torch.Tensor, saved: Sequence[torch.Tensor], groups: int, chunks: Sequence[slice],
                       grad_of_act: Callable) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``dL/dx``, ``dL/dgamma``, ``dL/dbeta`` of ``silu(GroupNorm(x))`` in two chunked passes.

    ``grad_of_act(i, chunk, act)`` returns a fresh ``(n, C)`` tensor ``dL/dsilu`` of sample ``i``'s tokens
    ``chunk``; ``act()`` gives ``silu(a)`` of that chunk for consumers that need it (weight gradients).
    """
    gamma, mean_c, rstd_c, scale, shift = saved
    b, count, c = tokens.shape
    grad_x = torch.empty_like(tokens)
    grad_gamma, grad_beta = torch.zeros_like(gamma), torch.zeros_like(gamma)
    sum_g = torch.zeros(b, c, dtype=torch.float64, device=tokens.device)  # sums of dL/dx_hat
    sum_gx = torch.zeros(b, c, dtype=torch.float64, device=tokens.device)  # sums of dL/dx_hat * x_hat
    for i in range(b):
        for r in chunks:
            xhat = (tokens[i, r] - mean_c[i]).mul_(rstd_c[i])
            a = torch.addcmul(shift[i], tokens[i, r], scale[i])
            ga = _silu_grad_(grad_of_act(i, r, lambda: F.silu(a)), a)
            gxhat = _norm_grad_terms(ga, xhat, gamma, (grad_gamma, grad_beta, sum_g[i], sum_gx[i]))
            grad_x[i, r] = gxhat
    m1, m2 = _group_means(sum_g, sum_gx, groups, count, tokens.dtype)
    for i in range(b):  # dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)) per group
        for r in chunks:
            xhat = (tokens[i, r] - mean_c[i]).mul_(rstd_c[i])
            grad_x[i, r].sub_(m1[i]).sub_(xhat.mul_(m2[i])).mul_(rstd_c[i])
    return grad_x, grad_gamma, grad_beta


def _pointwise_conv_consumer(gy: torch.Tensor, mat: torch.Tensor, bias: Optional[torch.Tensor]):
    """The backward of a 1x1 convolution ``mat`` ``(Cout, Cin)`` (+ ``bias``) applied to an activation chunk by chunk,
    given its output gradient tokens ``gy``: ``grad_of_act(i, r, act)`` (as :func:`_norm_act_backward` takes it)
    accumulates the weight and bias gradients and returns ``dL/dact`` of the chunk; also returns those two
    accumulators (the bias one ``None`` without a bias)."""
    grad_w = torch.zeros_like(mat)
    grad_bias = None if bias is None else torch.zeros_like(bias)

    def grad_of_act(i, r, act):
        g_c = gy[i, r]
        grad_w.addmm_(g_c.t(), act())
        if grad_bias is not None:
            grad_bias.add_(g_c.sum(0))
        return torch.mm(g_c, mat)

    return grad_of_act, grad_w, grad_bias


class _NormActConv(torch.autograd.Function):
    """``conv(silu(GroupNorm(x)))`` for a 1x1 ``conv``; saves ``x`` and the statistics only (module docstring)."""

    @staticmethod
    def forward(ctx, x, gamma, beta, weight, bias, groups, eps):
        b, c, h, w = x.shape
        tokens = _token_view(x)
        chunks = _chunk_rows(h * w, max(c, weight.shape[0]))
        mean_c, rstd_c, scale, shift = _norm_coefficients(tokens, gamma, beta, groups, eps, chunks)
        mat = weight.view(weight.shape[0], c).t()
        out = x.new_empty(b, h * w, weight.shape[0])
        for i in range(b):
            for r in chunks:
                a = torch.addcmul(shift[i], tokens[i, r], scale[i])
                torch.mm(F.silu(a, inplace=True), mat, out=out[i, r])
                if bias is not None:
                    out[i, r] += bias
        ctx.save_for_backward(x, gamma, weight, bias, mean_c, rstd_c, scale, shift)
        ctx.groups = groups
        return _as_map(out, h, w)

    @staticmethod
    def backward(ctx, grad):
        x, gamma, weight, bias, mean_c, rstd_c, scale, shift = ctx.saved_tensors
        b, c, h, w = x.shape
        grad_of_act, grad_w, grad_bias = _pointwise_conv_consumer(_token_view(grad), weight.view(-1, c), bias)
        grad_x, grad_gamma, grad_beta = _norm_act_backward(
            _token_view(x), (gamma, mean_c, rstd_c, scale, shift), ctx.groups,
            _chunk_rows(h * w, max(c, weight.shape[0])), grad_of_act)
        return _as_map(grad_x, h, w), grad_gamma, grad_beta, grad_w.view_as(weight), grad_bias, None, None


def pool_matrix(in_size: int, out_size: int, dtype: torch.dtype = torch.float32, device=None) -> torch.Tensor:
    """``(out_size, in_size)`` averaging weights of ``F.adaptive_avg_pool1d`` (window ``i``: from
    ``floor(i * in / out)`` to ``ceil((i + 1) * in / out)``)."""
    m = torch.zeros(out_size, in_size, dtype=torch.float64)
    for i in range(out_size):
        start, end = (i * in_size) // out_size, -(-((i + 1) * in_size) // out_size)
        m[i, start:end] = 1.0 / (end - start)
    return m.to(dtype=dtype, device=device)


class _NormActPool(torch.autograd.Function):
    """``adaptive_avg_pool2d(silu(GroupNorm(x)), size)`` for every size of ``sizes`` (none the input's size)."""

    @staticmethod
    def forward(ctx, x, gamma, beta, groups, eps, sizes):
        b, c, h, w = x.shape
        tokens = _token_view(x)
        chunks = _chunk_rows(h * w, c, align=w)  # bands of whole image rows
        mean_c, rstd_c, scale, shift = _norm_coefficients(tokens, gamma, beta, groups, eps, chunks)
        rows = [pool_matrix(h, oh, x.dtype, x.device) for oh, _ in sizes]
        cols = [pool_matrix(w, ow, x.dtype, x.device) for _, ow in sizes]
        acc = [x.new_zeros(b, oh, w * c) for oh, _ in sizes]  # pooled over rows only
        for i in range(b):
            for r in chunks:
                act = F.silu(torch.addcmul(shift[i], tokens[i, r], scale[i]), inplace=True).view(-1, w * c)
                for m, a in zip(rows, acc):
                    a[i].addmm_(m[:, r.start // w:r.stop // w], act)
        ctx.save_for_backward(x, gamma, mean_c, rstd_c, scale, shift)
        ctx.groups, ctx.sizes = groups, sizes
        return tuple(torch.einsum('bowc,pw->bcop', a.view(b, -1, w, c), m).contiguous() for a, m in zip(acc, cols))

    @staticmethod
    def backward(ctx, *grads):
        x, gamma, mean_c, rstd_c, scale, shift = ctx.saved_tensors
        b, c, h, w = x.shape
        spread = []  # per size: the pooled gradient spread over the columns, (B, oh, W*C), and the row weights
        for g, (oh, ow) in zip(grads, ctx.sizes):
            if g is not None:
                cols = pool_matrix(w, ow, x.dtype, x.device)
                spread.append((torch.einsum('bcop,pw->bowc', g, cols).reshape(b, oh, w * c),
                               pool_matrix(h, oh, x.dtype, x.device)))

        def grad_of_act(i, r, act):
            out = x.new_zeros(r.stop - r.start, c)
            band = out.view(-1, w * c)
            for t, m in spread:
                band.addmm_(m[:, r.start // w:r.stop // w].t(), t[i])
            return out

        grad_x, grad_gamma, grad_beta = _norm_act_backward(
            _token_view(x), (gamma, mean_c, rstd_c, scale, shift), ctx.groups, _chunk_rows(h * w, c, align=w),
            grad_of_act)
        return _as_map(grad_x, h, w), grad_gamma, grad_beta, None, None, None


def _group_norm_ok(x: torch.Tensor, norm: nn.Module) -> bool:
    return (fused_encoder.ENABLED and x.dim() == 4 and x.device.type == 'cpu'
            and x.dtype in (torch.float32, torch.float64) and not torch.is_autocast_enabled('cpu')
            and isinstance(norm, nn.GroupNorm) and norm.affine
            and all(p.dtype == x.dtype for p in norm.parameters()))


def norm_act_conv_fusable(x: torch.Tensor, norm: nn.Module, conv: nn.Module) -> bool:
    """Whether :func:`norm_act_conv` applies (CPU float32/float64 without autocast, affine GroupNorm, 1x1 conv)."""
    return (_group_norm_ok(x, norm) and is_pointwise_conv(conv)
            and all(p.dtype == x.dtype for p in conv.parameters()))


def norm_act_conv(x: torch.Tensor, norm: nn.GroupNorm, conv: nn.Conv2d) -> torch.Tensor:
    """``conv(silu(norm(x)))`` with autograd, by :class:`_NormActConv` (requires :func:`norm_act_conv_fusable`);
    returns a channels-last map."""
    return _NormActConv.apply(x, norm.weight, norm.bias, conv.weight, conv.bias, norm.num_groups, norm.eps)


def norm_act_pool_fusable(x: torch.Tensor, norm: nn.Module, sizes: Sequence[Size]) -> bool:
    """Whether :func:`norm_act_pool` applies: as :func:`norm_act_conv_fusable`, and no size is ``x``'s own."""
    return _group_norm_ok(x, norm) and all(tuple(s) != tuple(x.shape[-2:]) for s in sizes)


def norm_act_pool(x: torch.Tensor, norm: nn.GroupNorm, sizes: Sequence[Size]) -> Tuple[torch.Tensor, ...]:
    """``adaptive_avg_pool2d(silu(norm(x)), size)`` for each of ``sizes``, with autograd, by :class:`_NormActPool`
    (requires :func:`norm_act_pool_fusable`)."""
    return _NormActPool.apply(x, norm.weight, norm.bias, norm.num_groups, norm.eps,
                              tuple(tuple(int(v) for v in s) for s in sizes))


__all__ = ['norm_act_conv', 'norm_act_conv_fusable', 'norm_act_pool', 'norm_act_pool_fusable', 'pool_matrix']
