"""Local-window similarity and reassembly against loop-by-loop references of the CUDA kernels' semantics."""
import pytest
import torch
import torch.nn.functional as F

from mmjafar.models.layers.local_window import local_similarity, local_weighted_sum


def reference_weighted_sum(weights, features, k):
    """out[b,c,Y,X] = sum over in-bounds taps of w[b, g(c)*k*k + t, Y, X] * x[b, c, Y//s+i-r, X//s+j-r]."""
    weights, features = weights.detach(), features.detach()
    b, c, h, w = features.shape
    height, width = weights.shape[-2:]
    s, r, groups = height // h, k // 2, weights.shape[1] // (k * k)
    out = torch.zeros(b, c, height, width, dtype=torch.float64)
    for n in range(b):
        for ch in range(c):
            g = ch // (c // groups)
            for y in range(height):
                for x in range(width):
                    acc = 0.0
                    for i in range(k):
                        for j in range(k):
                            iy, ix = y // s + i - r, x // s + j - r
                            if 0 <= iy < h and 0 <= ix < w:
                                acc += float(weights[n, g * k * k + i * k + j, y, x]) * float(features[n, ch, iy, ix])
                    out[n, ch, y, x] = acc
    return out


def reference_similarity(query, key, k):
    query, key = query.detach(), key.detach()
    b, e, height, width = query.shape
    h, w = key.shape[-2:]
    s, r = height // h, k // 2
    out = torch.zeros(b, k * k, height, width, dtype=torch.float64)
    for n in range(b):
        for y in range(height):
            for x in range(width):
                for i in range(k):
                    for j in range(k):
                        iy, ix = y // s + i - r, x // s + j - r
                        if 0 <= iy < h and 0 <= ix < w:
                            out[n, i * k + j, y, x] = float((query[n, :, y, x] * key[n, :, iy, ix]).sum())
    return out


@pytest.mark.parametrize('scale,k,groups', [(2, 5, 1), (2, 3, 2), (1, 3, 1), (3, 3, 1)])
def test_weighted_sum_matches_reference(scale, k, groups):
    torch.manual_seed(0)
    feats = torch.randn(2, 4, 3, 4)
    weights = torch.randn(2, groups * k * k, 3 * scale, 4 * scale)
    out = local_weighted_sum(weights, feats, k, padding_mode='zeros')
    torch.testing.assert_close(out.double(), reference_weighted_sum(weights, feats, k), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize('scale,k', [(2, 5), (1, 7), (2, 3)])
def test_similarity_matches_reference(scale, k):
    torch.manual_seed(1)
    key = torch.randn(1, 6, 3, 5)
    query = torch.randn(1, 6, 3 * scale, 5 * scale)
    out = local_similarity(query, key, k, padding_mode='zeros')
    torch.testing.assert_close(out.double(), reference_similarity(query, key, k), atol=1e-5, rtol=1e-5)


def test_reflect_padding_equals_unfold_of_padded_map():
    torch.manual_seed(2)
    x = torch.randn(1, 3, 6, 7)
    weights = torch.randn(1, 49, 6, 7)
    patches = F.unfold(F.pad(x, [3] * 4, mode='reflect'), 7).view(1, 3, 49, 6, 7)
    expected = (patches * weights[:, None]).sum(2)
    torch.testing.assert_close(local_weighted_sum(weights, x, 7, padding_mode='reflect'), expected,
                               atol=1e-5, rtol=1e-5)


def test_accumulation_order_is_row_major_from_zero():
    """Taps are added one at a time in row-major order, bit for bit (FeatUp's C++ kernel order)."""
    torch.manual_seed(3)
    x = torch.randn(1, 2, 5, 5)
    weights = torch.randn(1, 9, 5, 5)
    padded = F.pad(x, [1] * 4)
    expected = torch.zeros_like(x)
    for t in range(9):
        i, j = divmod(t, 3)
        expected = expected + weights[:, t:t + 1] * padded[..., i:i + 5, j:j + 5]
    assert torch.equal(local_weighted_sum(weights, x, 3), expected)


def test_gradients_match_reference_autograd():
    torch.manual_seed(4)
    feats = torch.randn(1, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    weights = torch.randn(1, 9, 6, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda w, f: local_weighted_sum(w, f, 3), (weights, feats))
    query = torch.randn(1, 2, 6, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda q, f: local_similarity(q, f, 3), (query, feats))


def test_errors():
    with pytest.raises(ValueError, match='integer scale'):
        local_weighted_sum(torch.rand(1, 9, 5, 6), torch.rand(1, 2, 3, 3), 3)
    with pytest.raises(ValueError, match='odd'):
        local_weighted_sum(torch.rand(1, 16, 6, 6), torch.rand(1, 2, 3, 3), 4)
    with pytest.raises(ValueError, match='groups'):
        local_weighted_sum(torch.rand(1, 27, 6, 6), torch.rand(1, 2, 3, 3), 3)
    with pytest.raises(ValueError, match='reflect padding'):
        local_weighted_sum(torch.rand(1, 49, 3, 3), torch.rand(1, 2, 3, 3), 7, padding_mode='reflect')
