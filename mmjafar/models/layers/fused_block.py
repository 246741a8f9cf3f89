"""A whole pointwise :class:`~.conv_blocks.ResBlock` as one training-time autograd function on CPU.

Per-group fusion (:mod:`.fused_norm_act`) keeps each ``GroupNorm -> SiLU -> 1x1 conv`` group's input for the
backward pass: two full-size maps per block (the block input and the hidden map ``h``). When a block's
activations are recomputed in the backward pass (the checkpointed segments of JAFAR's lean training path), both
are alive together with the gradients. Here the block saves only its input and the two GroupNorms' statistics;
``h`` is recomputed chunk by chunk wherever it is needed, in the forward pass too (its statistics need one pass
before the output's). The gradients equal autograd's through the modules up to float rounding (tested with
``gradcheck`` in float64).

:class:`_PointwisePoolBlock` is the same block followed by adaptive average pooling to one or more sizes (the
last block of JAFAR's key encoder): pooling commutes with the last 1x1 convolution and the identity residual, so
the block's full-resolution output is never formed, and the backward spreads the pooled gradients band by band
instead of holding a full-size gradient of the pooled residual and one of the pooled branch.
"""
from typing import Callable, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from .fused_encoder import _StatsAccumulator, is_pointwise_conv
from .fused_norm_act import (_as_map, _chunk_rows, _coefficients_from_sums, _group_means, _norm_grad_terms,
                             _pointwise_conv_consumer, _silu_grad_, _token_view, norm_act_conv_fusable, pool_matrix)


class _BlockInput:
    """The block's input ``x`` chunk by chunk: the saved map's tokens, or with a ``stem`` (a 1x1 convolution in
    front of the block, e.g. an encoder's first layer) ``stem(u)`` recomputed from the saved ``u`` per chunk, so
    that the stem's full-size output is never stored."""

    def __init__(self, u: torch.Tensor, stem_weight=None, stem_bias=None) -> None:
        self.tokens = _token_view(u)
        self.weight = None if stem_weight is None else stem_weight.view(stem_weight.shape[0], -1)  # (C, Cin)
        self.bias = stem_bias

    def chunk(self, i: int, r: slice) -> torch.Tensor:
        if self.weight is None:
            return self.tokens[i, r]
        out = torch.mm(self.tokens[i, r], self.weight.t())
        return out if self.bias is None else out.add_(self.bias)


def _hidden(x: torch.Tensor, i: int, coef1, mat1, c1):
    """``conv1(silu(gn1(x)))`` of a chunk ``x`` of sample ``i`` (``mat1`` ``(Cin, Cout)``)."""
    out = torch.mm(F.silu(torch.addcmul(coef1[3][i], x, coef1[2][i]), inplace=True), mat1)
    return out if c1 is None else out.add_(c1)


def _block_coefficients(inp: _BlockInput, b, count, chunks, g1, b1, mat1, c1, g2, b2, groups, eps1, eps2):
    """Both GroupNorms' ``(mean, rstd, scale, shift)``: one pass over ``x``, one over ``h`` computed per chunk."""
    c, dtype, device = mat1.shape[0], mat1.dtype, mat1.device
    acc = _StatsAccumulator(b, c, device)
    for i in range(b):
        for r in chunks:
            acc.add(i, inp.chunk(i, r))
    coef1 = _coefficients_from_sums(acc.result(), g1, b1, groups, eps1, count, dtype)
    acc = _StatsAccumulator(b, c, device)
    for i in range(b):
        for r in chunks:
            acc.add(i, _hidden(inp.chunk(i, r), i, coef1, mat1, c1))
    return coef1, _coefficients_from_sums(acc.result(), g2, b2, groups, eps2, count, dtype)


def _block_backward(inp: _BlockInput, b, count, chunks, groups, g1, mat1, c1, g2, coef1, coef2,
                    branch_grad: Callable, residual_grad: Callable):
    """``dL/du`` and the parameter gradients of ``branch(silu(gn2(conv1(silu(gn1(x)))))) + residual(x)`` with
    ``x = stem(u)`` (or ``u``) in three chunked passes over one full-size buffer.

    ``branch_grad(i, r, act)`` returns a fresh ``(n, C)`` ``dL/dsilu(a2)`` of sample ``i``'s tokens ``r`` (and
    accumulates the consumer's own parameter gradients; ``act()`` is ``silu(a2)`` of the chunk);
    ``residual_grad(i, r)`` the residual's ``(n, C)`` gradient of those tokens. Returns ``dL/du`` as tokens, a
    dict of the GroupNorm and ``conv1`` gradients, ``conv1``'s bias gradient and the stem's weight and bias
    gradients (``None`` where absent).
    """
    c = mat1.shape[0]
    (m1, r1, _, t1), (m2, r2, s2, t2) = coef1, coef2
    grads = {k: torch.zeros_like(v) for k, v in dict(g1=g1, b1=g1, w1=mat1, g2=g2, b2=g2).items()}
    grad_c1 = None if c1 is None else torch.zeros_like(c1)
    buf = inp.tokens.new_empty(b, count, c)
    sums = [torch.zeros(b, c, dtype=torch.float64, device=buf.device) for _ in range(4)]

    def first_layer(x, i):
        a1 = torch.addcmul(t1[i], x, coef1[2][i])
        u1 = F.silu(a1)
        hid = torch.mm(u1, mat1.t())
        return a1, u1, hid if c1 is None else hid.add_(c1)

    for i in range(b):  # pass 1: the consumer's and gn2's gradients, dL/dh_hat
        for r in chunks:
            _, _, hid = first_layer(inp.chunk(i, r), i)
            hhat = (hid - m2[i]).mul_(r2[i])
            a2 = torch.addcmul(t2[i], hid, s2[i])
            ga2 = _silu_grad_(branch_grad(i, r, lambda: F.silu(a2)), a2)
            buf[i, r] = _norm_grad_terms(ga2, hhat, g2, (grads['g2'], grads['b2'], sums[0][i], sums[1][i]))
    k2 = _group_means(sums[0], sums[1], groups, count, buf.dtype)
    for i in range(b):  # pass 2: dL/dh, conv1 and gn1 gradients, dL/dx_hat (in the same buffer)
        for r in chunks:
            x = inp.chunk(i, r)
            a1, u1, hid = first_layer(x, i)
            hhat = (hid - m2[i]).mul_(r2[i])
            gh = buf[i, r].sub(k2[0][i]).sub_(hhat.mul_(k2[1][i])).mul_(r2[i])
            grads['w1'].addmm_(gh.t(), u1)
            if grad_c1 is not None:
                grad_c1 += gh.sum(0)
            xhat = (x - m1[i]).mul_(r1[i])
            ga1 = _silu_grad_(torch.mm(gh, mat1), a1)
            buf[i, r] = _norm_grad_terms(ga1, xhat, g1, (grads['g1'], grads['b1'], sums[2][i], sums[3][i]))
    k1 = _group_means(sums[2], sums[3], groups, count, buf.dtype)
    stem = inp.weight
    grad_stem = None if stem is None else torch.zeros_like(stem)
    grad_stem_bias = None if inp.bias is None else torch.zeros_like(inp.bias)
    grad_u = buf if stem is None or stem.shape[1] == c else inp.tokens.new_empty(inp.tokens.shape)
    for i in range(b):  # pass 3: dL/dx = gn1 backward + the residual's gradient; through the stem: dL/du
        for r in chunks:
            x = inp.chunk(i, r)
            xhat = (x - m1[i]).mul_(r1[i])
            gx = buf[i, r].sub_(k1[0][i]).sub_(xhat.mul_(k1[1][i])).mul_(r1[i]).add_(residual_grad(i, r))
            if stem is not None:
                grad_stem.addmm_(gx.t(), inp.tokens[i, r])
                if grad_stem_bias is not None:
                    grad_stem_bias += gx.sum(0)
                grad_u[i, r] = torch.mm(gx, stem)
    return grad_u, grads, grad_c1, grad_stem, grad_stem_bias


def _input_grads(stem_weight, grad_u, grad_stem, grad_stem_bias, height: int, width: int):
    """``dL/du`` as a map and the stem's weight and bias gradients, in :meth:`forward`'s argument order."""
    return (_as_map(grad_u, height, width), None if grad_stem is None else grad_stem.view_as(stem_weight),
            grad_stem_bias)


class _PointwiseBlock(torch.autograd.Function):
    """A whole pointwise :class:`~.conv_blocks.ResBlock` (``conv2(silu(gn2(conv1(silu(gn1(x)))))) + x``, 1x1
    convolutions, identity residual) saving only its input and the two GroupNorms' statistics; with a stem
    (``x = stem(u)``, a 1x1 convolution) it saves ``u`` instead of ``x``.

    Forward: one pass for ``gn1``'s statistics, one that computes ``h = conv1(...)`` per chunk only for ``gn2``'s
    statistics, one that recomputes ``h`` and writes the output (no full-size ``h`` is ever held). Backward: three
    chunked passes over one full-size buffer (``dL/dh_hat``, then ``dL/dx_hat`` in its place, then ``dL/dx``),
    each recomputing the chunk's activations from the saved input.
    """

    @staticmethod
    def forward(ctx, u, stem_w, stem_b, g1, b1, w1, c1, g2, b2, w2, c2, groups, eps1, eps2):
        b, _, h, w = u.shape
        c = w1.shape[0]
        inp = _BlockInput(u, stem_w, stem_b)
        chunks = _chunk_rows(h * w, c)
        mat1, mat2 = w1.view(c, c).t(), w2.view(c, c).t()
        coef1, coef2 = _block_coefficients(inp, b, h * w, chunks, g1, b1, mat1, c1, g2, b2, groups, eps1, eps2)
        out = u.new_empty(b, h * w, c)
        for i in range(b):
            for r in chunks:
                x = inp.chunk(i, r)
                a2 = torch.addcmul(coef2[3][i], _hidden(x, i, coef1, mat1, c1), coef2[2][i])
                torch.addmm(x, F.silu(a2, inplace=True), mat2, out=out[i, r])
                if c2 is not None:
                    out[i, r] += c2
        ctx.save_for_backward(u, stem_w, stem_b, g1, w1, c1, g2, w2, c2, *coef1, *coef2)
        ctx.groups = groups
        return _as_map(out, h, w)

    @staticmethod
    def backward(ctx, grad):
        u, stem_w, stem_b, g1, w1, c1, g2, w2, c2, *coefs = ctx.saved_tensors
        b, _, h, w = u.shape
        c = w1.shape[0]
        gy = _token_view(grad)
        branch_grad, grad_w2, grad_c2 = _pointwise_conv_consumer(gy, w2.view(c, c), c2)
        inp = _BlockInput(u, stem_w, stem_b)
        grad_u, grads, grad_c1, grad_sw, grad_sb = _block_backward(
            inp, b, h * w, _chunk_rows(h * w, c), ctx.groups, g1, w1.view(c, c), c1, g2, coefs[:4], coefs[4:],
            branch_grad, lambda i, r: gy[i, r])
        return (*_input_grads(stem_w, grad_u, grad_sw, grad_sb, h, w), grads['g1'], grads['b1'],
                grads['w1'].view_as(w1), grad_c1, grads['g2'], grads['b2'], grad_w2.view_as(w2), grad_c2,
                None, None, None)


def _spread(grad: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor):
    """A pooled gradient ``(B, C, oh, ow)`` spread over the columns, ``(B, oh, W*C)``, with its row weights."""
    b, c, oh, _ = grad.shape
    return torch.einsum('bcop,pw->bowc', grad, cols).reshape(b, oh, -1), rows


def _band_grad(spread, i, r, width, channels, like):
    """The spread pooled gradients of sample ``i``'s tokens ``r`` (whole image rows), summed over sizes."""
    out = like.new_zeros(r.stop - r.start, channels)
    band = out.view(-1, width * channels)
    for t, m in spread:
        band.addmm_(m[:, r.start // width:r.stop // width].t(), t[i])
    return out


class _PointwisePoolBlock(torch.autograd.Function):
    """``adaptive_avg_pool2d(block(x), size)`` for every size of ``sizes`` (none ``x``'s own) of a pointwise
    :class:`~.conv_blocks.ResBlock` with an identity residual, as ``conv2(pool(silu(gn2(h)))) + pool(x)``
    (``x = stem(u)`` with a stem, as in :class:`_PointwiseBlock`).

    Saves the input, the statistics and the small pooled branch maps. Forward: the two statistics passes of
    :class:`_PointwiseBlock`, then one that accumulates the pooled branch band by band (window matrices as in
    :mod:`.fused_norm_act`). Backward: :func:`_block_backward` with the pooled gradients spread per band.
    """

    @staticmethod
    def forward(ctx, u, stem_w, stem_b, g1, b1, w1, c1, g2, b2, w2, c2, groups, eps1, eps2, sizes):
        b, _, h, w = u.shape
        c = w1.shape[0]
        inp = _BlockInput(u, stem_w, stem_b)
        chunks = _chunk_rows(h * w, c, align=w)  # bands of whole image rows
        mat1 = w1.view(c, c).t()
        coef1, coef2 = _block_coefficients(inp, b, h * w, chunks, g1, b1, mat1, c1, g2, b2, groups, eps1, eps2)
        rows = [pool_matrix(h, oh, u.dtype, u.device) for oh, _ in sizes]
        cols = [pool_matrix(w, ow, u.dtype, u.device) for _, ow in sizes]
        acc_b = [u.new_zeros(b, oh, w * c) for oh, _ in sizes]  # pooled over rows only
        acc_x = [u.new_zeros(b, oh, w * c) for oh, _ in sizes]
        for i in range(b):
            for r in chunks:
                x = inp.chunk(i, r)
                a2 = torch.addcmul(coef2[3][i], _hidden(x, i, coef1, mat1, c1), coef2[2][i])
                act = F.silu(a2, inplace=True).view(-1, w * c)
                band = x.reshape(-1, w * c)
                for m, ab, ax in zip(rows, acc_b, acc_x):
                    ab[i].addmm_(m[:, r.start // w:r.stop // w], act)
                    ax[i].addmm_(m[:, r.start // w:r.stop // w], band)

        def finish(acc, m):
            return torch.einsum('bowc,pw->bcop', acc.view(b, -1, w, c), m).contiguous()

        pooled = [finish(a, m) for a, m in zip(acc_b, cols)]
        outs = tuple(F.conv2d(p, w2, c2) + finish(a, m) for p, a, m in zip(pooled, acc_x, cols))
        ctx.save_for_backward(u, stem_w, stem_b, g1, w1, c1, g2, w2, c2, *coef1, *coef2, *pooled)
        ctx.groups, ctx.sizes = groups, sizes
        return outs

    @staticmethod
    def backward(ctx, *grads):
        u, stem_w, stem_b, g1, w1, c1, g2, w2, c2, *rest = ctx.saved_tensors
        coefs, pooled = rest[:8], rest[8:]
        b, _, h, w = u.shape
        c = w1.shape[0]
        mat2 = w2.view(c, c)  # (Cout, Cin)
        grad_w2 = torch.zeros_like(mat2)
        grad_c2 = None if c2 is None else torch.zeros_like(c2)
        spread_b, spread_x = [], []
        for g, p, (oh, ow) in zip(grads, pooled, ctx.sizes):
            if g is None:
                continue
            grad_w2 += torch.einsum('bohw,bchw->oc', g, p)
            if grad_c2 is not None:
                grad_c2 += g.sum((0, 2, 3))
            rows, cols = pool_matrix(h, oh, u.dtype, u.device), pool_matrix(w, ow, u.dtype, u.device)
            spread_b.append(_spread(torch.einsum('bohw,oc->bchw', g, mat2), rows, cols))
            spread_x.append(_spread(g, rows, cols))
        inp = _BlockInput(u, stem_w, stem_b)
        grad_u, grads_, grad_c1, grad_sw, grad_sb = _block_backward(
            inp, b, h * w, _chunk_rows(h * w, c, align=w), ctx.groups, g1, w1.view(c, c), c1, g2, coefs[:4],
            coefs[4:], lambda i, r, act: _band_grad(spread_b, i, r, w, c, u),
            lambda i, r: _band_grad(spread_x, i, r, w, c, u))
        return (*_input_grads(stem_w, grad_u, grad_sw, grad_sb, h, w), grads_['g1'], grads_['b1'],
                grads_['w1'].view_as(w1), grad_c1, grads_['g2'], grads_['b2'], grad_w2.view_as(w2), grad_c2,
                None, None, None, None)


def pointwise_block_fusable(x: torch.Tensor, block: nn.Module, stem: Optional[nn.Module] = None) -> bool:
    """Whether :func:`pointwise_block` applies: a residual block of 1x1 convolutions with equal widths (identity
    residual), affine GroupNorms with equal groups, CPU float32/float64 without autocast; with a ``stem``, a 1x1
    convolution from ``x``'s channels to the block's width in front of it."""
    from .conv_blocks import ResBlock
    if not (isinstance(block, ResBlock) and block.is_residual and not hasattr(block, 'shortcut')):
        return False
    c = block.conv1.weight.shape[0]
    if stem is not None and not (is_pointwise_conv(stem) and stem.weight.shape[:2] == (c, x.shape[1])
                                 and all(p.dtype == x.dtype for p in stem.parameters())):
        return False
    return (norm_act_conv_fusable(x, block.norm1, block.conv1) and norm_act_conv_fusable(x, block.norm2, block.conv2)
            and (stem is not None or x.shape[1] == c) and block.conv1.weight.shape[:2] == (c, c)
            and block.conv2.weight.shape[:2] == (c, c) and block.norm1.num_groups == block.norm2.num_groups)


def _block_args(block: nn.Module, stem: Optional[nn.Module]) -> tuple:
    n1, n2 = block.norm1, block.norm2
    return (None if stem is None else stem.weight, None if stem is None else stem.bias, n1.weight, n1.bias,
            block.conv1.weight, block.conv1.bias, n2.weight, n2.bias, block.conv2.weight, block.conv2.bias,
            n1.num_groups, n1.eps, n2.eps)


def pointwise_block(x: torch.Tensor, block: nn.Module, stem: Optional[nn.Module] = None) -> torch.Tensor:
    """``block(stem(x))`` (``block(x)`` without a stem) with autograd by :class:`_PointwiseBlock` (requires
    :func:`pointwise_block_fusable`)."""
    return _PointwiseBlock.apply(x, *_block_args(block, stem))


def pointwise_pool_block(x: torch.Tensor, block: nn.Module, sizes: Sequence[Tuple[int, int]],
                         stem: Optional[nn.Module] = None) -> Tuple[torch.Tensor]:
    """``adaptive_avg_pool2d(block(stem(x)), size)`` for each of ``sizes`` (none ``x``'s own size), with autograd
    by :class:`_PointwisePoolBlock` (requires :func:`pointwise_block_fusable`)."""
    return _PointwisePoolBlock.apply(x, *_block_args(block, stem), tuple(tuple(int(v) for v in s) for s in sizes))


__all__ = ['pointwise_block', 'pointwise_block_fusable', 'pointwise_pool_block']
