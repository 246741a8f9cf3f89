"""Dilated 2-D neighbourhood attention with NATTEN's border rule, over keys given on a coarser grid (NAF).

Neighbourhood of a query, per axis of length ``L`` with kernel ``K`` (odd) and dilation ``d`` (NATTEN's rule):
query ``i`` belongs to the dilation group ``g = i mod d``, which holds ``n_g = ceil((L - g) / d)`` positions;
with ``s = clamp(i div d - K // 2, 0, n_g - K)`` its keys are ``g + d * (s + t)``, ``t = 0 .. K-1``. Windows
shift inwards at the borders instead of being clipped or padded, so every query sees ``K x K`` keys; NATTEN
needs ``K * d <= L``.

NAF enlarges keys and values from the feature grid ``(h, w)`` to the output grid with ``nearest-exact``
interpolation and runs that attention there. Looking the enlarged key up on the small grid turns every tap
into a key of the small grid, and a small-grid key reached by ``m`` taps weighs like ``m`` equal entries of
the softmax, i.e. one entry with its logit raised by ``log m``. So the attention is exactly a windowed
attention over the small grid with a separable bias of log-multiplicities (:func:`neighborhood_bias`), which
:func:`~.window_attention.windowed_attention` computes tile by tile in pure PyTorch: no ``Nq x Nk`` matrix,
no enlarged copy of the keys and values, any device, autograd included.

On CUDA NATTEN's kernels are used instead when ``natten`` is installed (optional dependency) and supports the
tensors' dtype (:mod:`.device_kernels`), chosen as the
official NAF code does: ``natten.functional.na2d_qk`` / ``na2d_av`` when they exist (NATTEN <= 0.17), else the
fused ``natten.na2d`` (NATTEN >= 0.20).
"""
import importlib
from typing import Optional, Tuple

import torch
import torch.nn.functional as F

from .attention_impl import use_kernel_impl
from .window_attention import windowed_attention


def natten_available() -> bool:
    """Whether the optional ``natten`` package can be imported."""
    try:
        importlib.import_module('natten')
    except ImportError:
        return False
    return True


def check_neighborhood(length: int, kernel_size: int, dilation: int, axis: str = 'axis') -> None:
    """Raise a clear error if NATTEN would reject a ``kernel_size`` x ``dilation`` neighbourhood on ``length``."""
    if kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f'neighbourhood attention needs an odd kernel size, got {kernel_size}')
    if dilation < 1:
        raise ValueError(f'neighbourhood attention needs dilation >= 1 on the {axis} axis, got {dilation}')
    if kernel_size * dilation > length:
        raise ValueError(f'neighbourhood attention: kernel {kernel_size} x dilation {dilation} = '
                         f'{kernel_size * dilation} exceeds the {axis} length {length}')


def neighborhood_indices(length: int, kernel_size: int, dilation: int, device=None) -> torch.Tensor:
    """``(length, kernel_size)`` key index of every tap of every query on one axis (NATTEN's rule, above)."""
    check_neighborhood(length, kernel_size, dilation)
    i = torch.arange(length, device=device)
    group = i % dilation
    group_len = torch.div(length - group + dilation - 1, dilation, rounding_mode='floor')
    start = torch.minimum((torch.div(i, dilation, rounding_mode='floor') - kernel_size // 2).clamp(min=0),
                          group_len - kernel_size)
    taps = torch.arange(kernel_size, device=device)
    return group[:, None] + dilation * (start[:, None] + taps[None])


def nearest_exact_indices(out_len: int, in_len: int) -> torch.Tensor:
    """``(out_len,)`` source index of each output index of ``F.interpolate(mode='nearest-exact')``.

    Obtained from ``F.interpolate`` itself (on the CPU, on an index ramp), so it follows PyTorch's own float
    rounding of the source coordinates.
    """
    ramp = torch.arange(in_len, dtype=torch.float64).view(1, 1, in_len)
    return F.interpolate(ramp, size=out_len, mode='nearest-exact').view(out_len).round().long()


def neighborhood_bias(out_len: int, in_len: int, kernel_size: int, dilation: int, device=None,
                      dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``(out_len, in_len)`` log-multiplicity bias of one axis: ``log`` of how many taps of query ``i`` land on
    key ``r`` of the small grid after ``nearest-exact`` enlargement, ``-inf`` for keys it does not see."""
    taps = nearest_exact_indices(out_len, in_len)[neighborhood_indices(out_len, kernel_size, dilation)]
    counts = torch.zeros(out_len, in_len, dtype=torch.float64).scatter_add_(1, taps, torch.ones(taps.shape).double())
    return counts.log().to(device=device, dtype=dtype)


def _check_shapes(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, kernel_size: Tuple[int, int],
                  dilation: Tuple[int, int]) -> None:
    if q.dim() != 5 or k.dim() != 5 or v.dim() != 5:
        raise ValueError('neighborhood_attention_2d expects 5-D (B, heads, H, W, d) query, key and value, got '
                         f'{tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}')
    if k.shape[:2] != q.shape[:2] or v.shape[:4] != k.shape[:4] or k.shape[-1] != q.shape[-1]:
        raise ValueError(f'neighborhood_attention_2d: shapes do not fit: query {tuple(q.shape)}, key '
                         f'{tuple(k.shape)}, value {tuple(v.shape)}')
    for axis, length, small, ks, dil in zip(('height', 'width'), q.shape[2:4], k.shape[2:4], kernel_size,
                                            dilation):
        if small > length:
            raise ValueError(f'neighborhood_attention_2d: the key grid {axis} ({small}) exceeds the query grid '
                             f'{axis} ({length}); keys are enlarged to the query grid, never shrunk')
        check_neighborhood(length, ks, dil, axis)


def _natten_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, kernel_size: Tuple[int, int],
                      dilation: Tuple[int, int], scale: float) -> torch.Tensor:
    """NATTEN's kernels on the enlarged keys and values; returns ``(B, H, W, heads * dv)``."""
    natten = importlib.import_module('natten')
    size = q.shape[2:4]
    b, heads = q.shape[:2]

    def enlarge(x: torch.Tensor) -> torch.Tensor:  # (B, n, h, w, c) -> (B, n, H, W, c)
        x = F.interpolate(x.permute(0, 1, 4, 2, 3).flatten(1, 2), size=size, mode='nearest-exact')
        return x.unflatten(1, (heads, -1)).permute(0, 1, 3, 4, 2)

    k, v = enlarge(k).to(q.dtype), enlarge(v).to(q.dtype)
    functional = importlib.import_module('natten.functional')
    if hasattr(functional, 'na2d_qk'):  # NATTEN <= 0.17 (NAF's development setup): (B, n, H, W, d) layout
        logits = functional.na2d_qk(q.contiguous(), k.contiguous(), kernel_size=kernel_size, dilation=dilation)
        probs = (logits * scale).softmax(dim=-1)
        out = functional.na2d_av(probs, v.contiguous(), kernel_size=kernel_size, dilation=dilation)
        return out.permute(0, 2, 3, 1, 4).reshape(b, size[0], size[1], -1)
    # NATTEN >= 0.20: fused kernel, heads-last layout (B, H, W, n, d)
    out = natten.na2d(q.permute(0, 2, 3, 1, 4).contiguous(), k.permute(0, 2, 3, 1, 4).contiguous(),
                      v.permute(0, 2, 3, 1, 4).contiguous(), kernel_size=kernel_size, dilation=dilation, stride=1,
                      scale=scale)
    return out.flatten(3)


def neighborhood_attention_2d(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, kernel_size: Tuple[int, int],
                              dilation: Tuple[int, int], scale: float, impl: Optional[str] = None,
                              average_heads: bool = False, chunk_elements: Optional[int] = None) -> torch.Tensor:
    """Dilated neighbourhood attention of ``q`` over ``k``/``v`` enlarged (``nearest-exact``) to ``q``'s grid.

    Args:
        q: ``(B, n, H, W, d)`` queries (not scaled).
        k: ``(B, n, h, w, d)`` keys on a grid no larger than the queries' (``h = H, w = W`` for plain NA).
        v: ``(B, n, h, w, dv)`` values (one block per head), on the keys' grid.
        kernel_size: ``(K_h, K_w)``, odd.
        dilation: ``(d_h, d_w)`` with ``K * d`` at most the query grid on each axis.
        scale: logit scale.
        impl: (:mod:`.attention_impl`) 'torch' or 'reference' (pure PyTorch, tiled, exact), 'natten' (NATTEN's
            kernels; an error where they cannot run), 'auto' (NATTEN when it is installed and supports the tensors'
            device and dtype, else 'torch'; see :mod:`.device_kernels`) or None (the process-wide default).
        average_heads: average the weights over heads and apply them to ``v[:, 0]`` (all heads must share the
            values; AnyUp's NATTEN variant) instead of concatenating per-head outputs.
        chunk_elements: working-set budget of the 'torch' path (see :func:`windowed_attention`).

    Returns:
        ``(B, H, W, n * dv)`` (head-major channels), or ``(B, H, W, dv)`` with ``average_heads``.
    """
    kernel_size, dilation = tuple(kernel_size), tuple(dilation)
    _check_shapes(q, k, v, kernel_size, dilation)
    if use_kernel_impl(impl, 'natten', q, 'neighborhood_attention_2d'):
        out = _natten_attention(q, k, v, kernel_size, dilation, scale)
        return out.unflatten(-1, (q.shape[1], -1)).mean(dim=3) if average_heads else out
    (out_h, out_w), (h, w) = q.shape[2:4], k.shape[2:4]
    dtype = torch.promote_types(q.dtype, torch.float32)
    row_bias = neighborhood_bias(out_h, h, kernel_size[0], dilation[0], device=q.device, dtype=dtype)
    col_bias = neighborhood_bias(out_w, w, kernel_size[1], dilation[1], device=q.device, dtype=dtype)
    return windowed_attention(q * scale, k, v[:, 0] if average_heads else v, row_bias, col_bias,
                              average_heads=average_heads, chunk_elements=chunk_elements)


def neighborhood_logits(q: torch.Tensor, k: torch.Tensor, kernel_size: Tuple[int, int],
                        dilation: Tuple[int, int], scale: float) -> torch.Tensor:
    """Scaled logits ``(B, n, H, W, K_h * K_w)`` of every tap, taps row-major (NATTEN's ``na2d_qk`` order).

    Materialises ``K_h * K_w`` logits per query: for inspection and tests, not for the forward pass.
    """
    (out_h, out_w), (h, w) = q.shape[2:4], k.shape[2:4]
    rows = nearest_exact_indices(out_h, h)[neighborhood_indices(out_h, kernel_size[0], dilation[0])]
    cols = nearest_exact_indices(out_w, w)[neighborhood_indices(out_w, kernel_size[1], dilation[1])]
    rows, cols = rows.to(q.device), cols.to(q.device)
    # gathered[b, n, i, j, t, u] = k[b, n, rows[i, t], cols[j, u]]
    gathered = k[:, :, rows[:, None, :, None], cols[None, :, None, :]]
    logits = torch.einsum('bnijd,bnijtud->bnijtu', q, gathered) * scale
    return logits.flatten(-2)
