"""A whole pointwise :class:`~.conv_blocks.ResBlock` as one training-time autograd function on CPU.

Per-group fusion (:mod:`.fused_norm_act`) keeps each ``GroupNorm -> SiLU -> 1x1 conv`` group's input for the
backward pass: two full-size maps per block (the block input and the hidden map ``h``). When a block's
activations are recomputed in the backward pass (the checkpointed segments of JAFAR's lean training path), both
are alive together with the gradients. Here the block saves only its input and the two GroupNorms' statistics;
``h`` is recomputed chunk by chunk wherever it is needed, in the forward pass too (its statistics need one pass
before the output's). The gradients equal autograd's through the modules up to float rounding (tested with
``gradcheck`` in float64).
"""
import torch
import torch.nn.functional as F
from torch import nn

from .fused_encoder import _StatsAccumulator
from .fused_norm_act import (_as_map, _chunk_rows, _coefficients_from_sums, _group_means, _norm_coefficients,
                             _norm_grad_terms, _silu_grad_, _token_view, norm_act_conv_fusable)


class _PointwiseBlock(torch.autograd.Function):
    """A whole pointwise :class:`~.conv_blocks.ResBlock` (``conv2(silu(gn2(conv1(silu(gn1(x)))))) + x``, 1x1
    convolutions, identity residual) saving only ``x`` and the two GroupNorms' statistics.

    Forward: one pass for ``gn1``'s statistics, one that computes ``h = conv1(...)`` per chunk only for ``gn2``'s
    statistics, one that recomputes ``h`` and writes the output (no full-size ``h`` is ever held). Backward: three
    chunked passes over one full-size buffer (``dL/dh_hat``, then ``dL/dx_hat`` in its place, then ``dL/dx``),
    each recomputing the chunk's activations from ``x``.
    """

    @staticmethod
    def forward(ctx, x, g1, b1, w1, c1, g2, b2, w2, c2, groups, eps1, eps2):
        b, c, h, w = x.shape
        tokens = _token_view(x)
        chunks = _chunk_rows(h * w, c)
        m1, r1, s1, t1 = _norm_coefficients(tokens, g1, b1, groups, eps1, chunks)
        mat1, mat2 = w1.view(c, c).t(), w2.view(c, c).t()

        def hidden(i, r):
            out = torch.mm(F.silu(torch.addcmul(t1[i], tokens[i, r], s1[i]), inplace=True), mat1)
            return out if c1 is None else out.add_(c1)

        acc = _StatsAccumulator(b, c, x.device)
        for i in range(b):
            for r in chunks:
                acc.add(i, hidden(i, r))
        m2, r2, s2, t2 = _coefficients_from_sums(acc.result(), g2, b2, groups, eps2, h * w, x.dtype)
        out = torch.empty_like(tokens)
        for i in range(b):
            for r in chunks:
                a2 = torch.addcmul(t2[i], hidden(i, r), s2[i])
                torch.addmm(tokens[i, r], F.silu(a2, inplace=True), mat2, out=out[i, r])
                if c2 is not None:
                    out[i, r] += c2
        ctx.save_for_backward(x, g1, w1, c1, g2, w2, c2, m1, r1, s1, t1, m2, r2, s2, t2)
        ctx.groups = groups
        return _as_map(out, h, w)

    @staticmethod
    def backward(ctx, grad):
        x, g1, w1, c1, g2, w2, c2, m1, r1, s1, t1, m2, r2, s2, t2 = ctx.saved_tensors
        groups = ctx.groups
        b, c, h, w = x.shape
        tokens, gy = _token_view(x), _token_view(grad)
        chunks = _chunk_rows(h * w, c)
        mat1, mat2 = w1.view(c, c), w2.view(c, c)  # (Cout, Cin)
        like = dict(g1=g1, b1=g1, w1=mat1, g2=g2, b2=g2, w2=mat2)
        grads = {k: torch.zeros_like(v) for k, v in like.items()}
        grad_c1 = None if c1 is None else torch.zeros_like(c1)
        grad_c2 = None if c2 is None else torch.zeros_like(c2)
        buf = torch.empty_like(tokens)
        sums = [torch.zeros(b, c, dtype=torch.float64, device=x.device) for _ in range(4)]

        def first_layer(i, r):
            a1 = torch.addcmul(t1[i], tokens[i, r], s1[i])
            u1 = F.silu(a1)
            hid = torch.mm(u1, mat1.t())
            return a1, u1, hid if c1 is None else hid.add_(c1)

        for i in range(b):  # pass 1: conv2 and gn2 gradients, dL/dh_hat
            for r in chunks:
                _, _, hid = first_layer(i, r)
                hhat = (hid - m2[i]).mul_(r2[i])
                a2 = torch.addcmul(t2[i], hid, s2[i])
                g_c = gy[i, r]
                grads['w2'].addmm_(g_c.t(), F.silu(a2))
                if grad_c2 is not None:
                    grad_c2 += g_c.sum(0)
                ga2 = _silu_grad_(torch.mm(g_c, mat2), a2)
                buf[i, r] = _norm_grad_terms(ga2, hhat, g2, (grads['g2'], grads['b2'], sums[0][i], sums[1][i]))
        k2 = _group_means(sums[0], sums[1], groups, h * w, x.dtype)
        for i in range(b):  # pass 2: dL/dh, conv1 and gn1 gradients, dL/dx_hat (in the same buffer)
            for r in chunks:
                a1, u1, hid = first_layer(i, r)
                hhat = (hid - m2[i]).mul_(r2[i])
                gh = buf[i, r].sub(k2[0][i]).sub_(hhat.mul_(k2[1][i])).mul_(r2[i])
                grads['w1'].addmm_(gh.t(), u1)
                if grad_c1 is not None:
                    grad_c1 += gh.sum(0)
                xhat = (tokens[i, r] - m1[i]).mul_(r1[i])
                ga1 = _silu_grad_(torch.mm(gh, mat1), a1)
                buf[i, r] = _norm_grad_terms(ga1, xhat, g1, (grads['g1'], grads['b1'], sums[2][i], sums[3][i]))
        k1 = _group_means(sums[2], sums[3], groups, h * w, x.dtype)
        for i in range(b):  # pass 3: dL/dx = gn1 backward + the residual's gradient
            for r in chunks:
                xhat = (tokens[i, r] - m1[i]).mul_(r1[i])
                buf[i, r].sub_(k1[0][i]).sub_(xhat.mul_(k1[1][i])).mul_(r1[i]).add_(gy[i, r])
        return (_as_map(buf, h, w), grads['g1'], grads['b1'], grads['w1'].view_as(w1), grad_c1, grads['g2'],
                grads['b2'], grads['w2'].view_as(w2), grad_c2, None, None, None)


def pointwise_block_fusable(x: torch.Tensor, block: nn.Module) -> bool:
    """Whether :func:`pointwise_block` applies: a residual block of 1x1 convolutions with equal widths (identity
    residual), affine GroupNorms with equal groups, CPU float32/float64 without autocast."""
    from .conv_blocks import ResBlock
    if not (isinstance(block, ResBlock) and block.is_residual and not hasattr(block, 'shortcut')):
        return False
    c = x.shape[1] if x.dim() == 4 else -1
    return (norm_act_conv_fusable(x, block.norm1, block.conv1) and norm_act_conv_fusable(x, block.norm2, block.conv2)
            and block.conv1.weight.shape[:2] == (c, c) and block.conv2.weight.shape[:2] == (c, c)
            and block.norm1.num_groups == block.norm2.num_groups)


def pointwise_block(x: torch.Tensor, block: nn.Module) -> torch.Tensor:
    """``block(x)`` with autograd by :class:`_PointwiseBlock` (requires :func:`pointwise_block_fusable`)."""
    n1, n2 = block.norm1, block.norm2
    return _PointwiseBlock.apply(x, n1.weight, n1.bias, block.conv1.weight, block.conv1.bias, n2.weight, n2.bias,
                                 block.conv2.weight, block.conv2.bias, n1.num_groups, n1.eps, n2.eps)


__all__ = ['pointwise_block', 'pointwise_block_fusable']
