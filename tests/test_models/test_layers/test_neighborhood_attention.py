"""Neighbourhood attention (NATTEN's rule) and tiled windowed attention against brute-force references."""
import math

import pytest
import torch
import torch.nn.functional as F

from mmjafar.models.layers import window_attention
from mmjafar.models.layers.neighborhood_attention import (natten_available, nearest_exact_indices,
                                                          neighborhood_attention_2d, neighborhood_indices,
                                                          neighborhood_logits)
from mmjafar.models.layers.window_attention import dense_window_bias, ratio_window_bias, windowed_attention


def brute_indices(length, kernel, dilation):
    """The README's rule written out per query, with plain Python integers."""
    rows = []
    for i in range(length):
        g = i % dilation
        n_g = math.ceil((length - g) / dilation)
        s = min(max(i // dilation - kernel // 2, 0), n_g - kernel)
        rows.append([g + dilation * (s + t) for t in range(kernel)])
    return torch.tensor(rows)


@pytest.mark.parametrize('length,kernel,dilation', [(40, 9, 4), (50, 9, 4), (27, 9, 3), (9, 9, 1), (23, 5, 2),
                                                    (13, 3, 4)])
def test_indices_follow_natten_rule(length, kernel, dilation):
    idx = neighborhood_indices(length, kernel, dilation)
    assert torch.equal(idx, brute_indices(length, kernel, dilation))
    # every query sees `kernel` distinct keys of its own dilation group, inside the axis (shifted, not clipped)
    assert idx.min() >= 0 and idx.max() < length
    assert ((idx % dilation) == (torch.arange(length) % dilation)[:, None]).all()
    assert all(len(set(row.tolist())) == kernel for row in idx)
    # interior queries are centred
    mid = idx[length // 2]
    assert (mid == length // 2).any()


def test_nearest_exact_indices_match_interpolate():
    for out_len, in_len in [(50, 12), (27, 9), (40, 10), (7, 7), (45, 9)]:
        ramp = torch.arange(in_len, dtype=torch.float32).view(1, 1, 1, in_len)
        expected = F.interpolate(ramp, size=(1, out_len), mode='nearest-exact').view(-1).long()
        assert torch.equal(nearest_exact_indices(out_len, in_len), expected)


def reference_na(q, k, v, kernel, dilation, scale):
    """NAF's computation written plainly: enlarge k and v, gather each query's K x K keys, softmax."""
    size = q.shape[2:4]

    def enlarge(x):
        x = F.interpolate(x.permute(0, 1, 4, 2, 3).flatten(1, 2), size=size, mode='nearest-exact')
        return x.unflatten(1, (q.shape[1], -1)).permute(0, 1, 3, 4, 2)

    k, v = enlarge(k), enlarge(v)
    rows = brute_indices(size[0], kernel[0], dilation[0])
    cols = brute_indices(size[1], kernel[1], dilation[1])
    kn = k[:, :, rows[:, None, :, None], cols[None, :, None, :]].flatten(4, 5)  # (B, n, H, W, K*K, d)
    vn = v[:, :, rows[:, None, :, None], cols[None, :, None, :]].flatten(4, 5)
    logits = torch.einsum('bnhwd,bnhwtd->bnhwt', q, kn) * scale
    out = torch.einsum('bnhwt,bnhwtc->bnhwc', logits.softmax(-1), vn)  # (B, n, H, W, dv)
    return out.permute(0, 2, 3, 1, 4).flatten(3), logits


@pytest.mark.parametrize('out_size,grid,kernel', [((27, 50), (9, 12), (9, 9)), ((20, 21), (20, 21), (5, 7)),
                                                  ((31, 17), (10, 8), (3, 5))])
def test_torch_path_equals_reference(out_size, grid, kernel):
    torch.manual_seed(0)
    dilation = (out_size[0] // grid[0], out_size[1] // grid[1])
    q = torch.randn(2, 3, *out_size, 8, dtype=torch.float64) * 2
    k = torch.randn(2, 3, *grid, 8, dtype=torch.float64)
    v = torch.randn(2, 3, *grid, 5, dtype=torch.float64)
    expected, logits = reference_na(q, k, v, kernel, dilation, 0.5)
    out = neighborhood_attention_2d(q, k, v, kernel, dilation, 0.5, impl='torch', chunk_elements=4096)
    torch.testing.assert_close(out, expected, atol=1e-10, rtol=1e-10)
    torch.testing.assert_close(neighborhood_logits(q, k, kernel, dilation, 0.5), logits)


def test_gradients_equal_reference():
    torch.manual_seed(1)
    q = torch.randn(1, 2, 22, 19, 4, dtype=torch.float64, requires_grad=True)
    k = torch.randn(1, 2, 9, 9, 4, dtype=torch.float64, requires_grad=True)
    v = torch.randn(1, 2, 9, 9, 3, dtype=torch.float64, requires_grad=True)
    grads = []
    for fn in (lambda: neighborhood_attention_2d(q, k, v, (9, 9), (2, 2), 0.7, impl='torch', chunk_elements=999),
               lambda: reference_na(q, k, v, (9, 9), (2, 2), 0.7)[0]):
        out = fn()
        grads.append(torch.autograd.grad((out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum(), (q, k, v)))
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, atol=1e-10, rtol=1e-10)


def test_memory_is_bounded(monkeypatch):
    """Tiles meet only the keys they can see: no piece of logits spans the whole key grid."""
    seen = []
    probs = window_attention.attention_probs

    def spy(q, k, bias=None):
        seen.append((q.shape[2], k.shape[2]))
        return probs(q, k, bias)

    monkeypatch.setattr(window_attention, 'attention_probs', spy)
    q, k = torch.randn(1, 4, 224, 224, 8), torch.randn(1, 4, 32, 32, 8)
    v = torch.randn(1, 4, 32, 32, 6)
    neighborhood_attention_2d(q, k, v, (9, 9), (7, 7), 0.3, impl='torch', chunk_elements=1 << 18)
    assert max(keys for _, keys in seen) <= 16 * 16  # a full matrix would have 1024 keys
    assert max(b * 4 * keys for b, keys in seen) <= 1 << 18
    assert sum(n for n, _ in seen) == 224 * 224


def test_ratio_window_uses_float32_bounds():
    # 45 output columns over 9 keys: float32 puts the window start of columns 29, 34, 39, 44 one key lower
    bias = ratio_window_bias(45, 9, 0.1)
    start32 = torch.isfinite(bias).int().argmax(dim=1)
    centre = (torch.arange(45, dtype=torch.float64) + 0.5) / 45
    start64 = ((centre - 0.1).clamp(0, 1) * 9).floor().long()
    assert (start64 - start32).nonzero().flatten().tolist() == [29, 34, 39, 44]
    assert (start64 - start32).max() == 1


def test_windowed_attention_equals_dense_masked():
    torch.manual_seed(2)
    q, k = torch.randn(2, 4, 30, 45, 8, dtype=torch.float64), torch.randn(2, 4, 6, 9, 8, dtype=torch.float64)
    v = torch.randn(2, 6, 9, 7, dtype=torch.float64)
    rb, cb = ratio_window_bias(30, 6, 0.1).double(), ratio_window_bias(45, 9, 0.1).double()
    dense = (q.flatten(2, 3) @ k.flatten(2, 3).transpose(-1, -2) + dense_window_bias(rb, cb)).softmax(-1)
    expected = (dense.mean(1) @ v.flatten(1, 2)).view(2, 30, 45, 7)
    for budget in (None, 500):
        out = windowed_attention(q, k, v, rb, cb, average_heads=True, chunk_elements=budget)
        torch.testing.assert_close(out, expected, atol=1e-12, rtol=1e-12)


def test_errors():
    with pytest.raises(ValueError, match='exceeds'):
        neighborhood_indices(35, 9, 4)
    with pytest.raises(ValueError, match='odd'):
        neighborhood_indices(35, 4, 1)
    q = torch.randn(1, 1, 8, 8, 4)
    with pytest.raises(ValueError, match='exceeds the query grid'):
        neighborhood_attention_2d(q, torch.randn(1, 1, 9, 9, 4), torch.randn(1, 1, 9, 9, 4), (3, 3), (1, 1), 1.0)
    with pytest.raises(ValueError, match='impl'):
        neighborhood_attention_2d(q, q, q, (3, 3), (1, 1), 1.0, impl='cuda')
    with pytest.raises(RuntimeError, match=r"neighborhood_attention_2d\(impl='natten'\): natten runs on .*cuda"):
        neighborhood_attention_2d(q, q, q, (3, 3), (1, 1), 1.0, impl='natten')  # CPU tensors
    with pytest.raises(ValueError, match='sees no key'):
        windowed_attention(q, q, q[:, 0], torch.full((8, 8), float('-inf')), torch.zeros(8, 8), True)


@pytest.mark.skipif(not (natten_available() and torch.cuda.is_available()),
                    reason='NATTEN kernels need the optional natten package and a CUDA device')
def test_natten_kernels_equal_torch_path():
    torch.manual_seed(3)
    q = torch.randn(2, 4, 54, 60, 64, device='cuda')
    k = torch.randn(2, 4, 9, 12, 64, device='cuda')
    v = torch.randn(2, 4, 9, 12, 96, device='cuda')
    fused = neighborhood_attention_2d(q, k, v, (9, 9), (6, 5), 0.125, impl='natten')
    torch.testing.assert_close(fused, neighborhood_attention_2d(q, k, v, (9, 9), (6, 5), 0.125, impl='torch'),
                               atol=2e-3, rtol=2e-3)
