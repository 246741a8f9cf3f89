"""Head-averaged attention: the fused CPU inference chunk and the SDPA path against the materialised weights."""
import pytest
import torch

from mmjafar.models.layers import CrossAttentionBlock, HeadAveragedCrossAttention, averaged_attention
from mmjafar.models.layers.attention_kernels import fused_averaged_attention, sdpa_averaged_attention


def _module(dtype, heads=4):
    torch.manual_seed(0)
    m = HeadAveragedCrossAttention(32, 32, 24, heads, chunk_elements=97).to(dtype).eval()
    for p in m.parameters():
        p.data.normal_()
    return m


@pytest.mark.parametrize('dtype,tol', [(torch.float64, 1e-12), (torch.float32, 1e-5)])
@pytest.mark.parametrize('masked', [False, True])
def test_fused_inference_equals_naive(dtype, tol, masked):
    m = _module(dtype)
    q, k, v = (torch.randn(2, n, c, dtype=dtype) for n, c in ((50, 32), (12, 32), (12, 24)))
    bias = None
    if masked:
        bias = torch.zeros(50, 12, dtype=dtype)
        bias[:, :3] = float('-inf')
    with torch.no_grad():
        out = m(q, k, v, attn_bias=bias)
        m.impl = 'reference'
        ref = m(q, k, v, attn_bias=bias)
        qq, kk = m.project(q, k)
        functional = averaged_attention(qq, kk, v, impl='torch', chunk_elements=100, bias=bias)
        direct = fused_averaged_attention(qq, kk, v, chunk_elements=100, bias=bias)
        sdpa = sdpa_averaged_attention(qq, kk, v, chunk_queries=7, bias=bias)
    for got in (out, functional, direct, sdpa):
        torch.testing.assert_close(got, ref, rtol=tol, atol=tol)


def test_non_power_of_two_heads_and_block_layout():
    torch.manual_seed(0)
    block = CrossAttentionBlock(24, 24, 16, 3, chunk_elements=50).eval()  # 3 heads: V / 3 is not exact in binary
    queries, keys, values = torch.randn(1, 24, 9, 7), torch.randn(1, 24, 3, 2), torch.randn(1, 16, 3, 2)
    with torch.no_grad():
        out = block(queries, keys, values)
        block.cross_attn.impl = 'reference'
        ref = block(queries, keys, values)
    assert out.shape == (1, 16, 9, 7)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-6)
