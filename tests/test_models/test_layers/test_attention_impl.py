"""One ``impl`` vocabulary: a process-wide default, per-instance overrides, one resolver for every module."""
import pytest
import torch

import mmjafar.models.layers.attention_impl as attention_impl
from mmjafar.models.layers import (ATTN_IMPLS, HeadAveragedCrossAttention, check_attn_impl, get_attn_impl,
                                   neighborhood_attention_2d, resolve_attn_impl, set_attn_impl)
from mmjafar.models.upsamplers import CARAFE, JAFAR, NAF, AnyUp


@pytest.fixture
def default_impl():
    before = get_attn_impl()
    yield
    set_attn_impl(before)


def test_vocabulary_and_aliases():
    assert ATTN_IMPLS == ('auto', 'torch', 'reference')
    assert resolve_attn_impl('lean') == 'torch' and resolve_attn_impl('naive') == 'reference'
    assert check_attn_impl(None) is None and check_attn_impl('mmcv', ('mmcv', )) == 'mmcv'
    with pytest.raises(ValueError, match=r"JAFAR: impl must be one of \('auto', 'torch', 'reference'\), got 'mmcv'"):
        JAFAR(v_dim=8, qk_dim=16, num_heads=2, impl='mmcv')  # a kernel JAFAR does not have
    for build in (lambda: CARAFE(channels=8, impl='natten'), lambda: NAF(impl='mmcv')):
        with pytest.raises(ValueError, match='impl must be one of'):
            build()
    with pytest.raises(ValueError, match='set_attn_impl'):
        set_attn_impl('natten')  # the process-wide default takes the generic names only


def test_default_follows_the_global_and_instances_override(default_impl, monkeypatch):
    torch.manual_seed(0)
    attn = HeadAveragedCrossAttention(16, 16, 8, 2).eval()
    q, k, v = torch.randn(1, 10, 16), torch.randn(1, 6, 16), torch.randn(1, 6, 8)
    paths = []
    original = attn.attention.forward
    monkeypatch.setattr(attn.attention, 'forward', lambda *a, **kw: paths.append('reference') or original(*a, **kw))
    with torch.no_grad():
        lean = attn(q, k, v)
        set_attn_impl('reference')  # read at each call by modules built with impl=None
        reference = attn(q, k, v)
        attn.impl = 'torch'  # the instance's own choice wins over the global default
        attn(q, k, v)
    assert paths == ['reference']
    torch.testing.assert_close(lean, reference, atol=1e-6, rtol=1e-5)


def test_upsampler_impl_is_its_attention_impl():
    up = AnyUp(qk_dim=16, num_heads=2, impl='naive')
    assert up.impl == up.cross_decode.cross_attn.impl == 'reference'
    up.impl = 'auto'
    assert up.cross_decode.cross_attn.impl == 'auto'
    jafar = JAFAR(v_dim=8, qk_dim=16, num_heads=2)
    assert jafar.impl is None


def test_neighborhood_attention_takes_the_vocabulary(default_impl):
    torch.manual_seed(0)
    q, k, v = torch.randn(1, 2, 6, 5, 4), torch.randn(1, 2, 3, 5, 4), torch.randn(1, 2, 3, 5, 3)
    out = neighborhood_attention_2d(q, k, v, (3, 3), (1, 1), 0.5, impl='torch')
    set_attn_impl('reference')
    torch.testing.assert_close(neighborhood_attention_2d(q, k, v, (3, 3), (1, 1), 0.5), out)
    with pytest.raises(ValueError, match='neighborhood_attention_2d: impl must be one of'):
        neighborhood_attention_2d(q, k, v, (3, 3), (1, 1), 0.5, impl='mmcv')


def test_environment_default(monkeypatch):
    monkeypatch.setattr(attention_impl, '_default', 'naive')  # as MMJAFAR_ATTN_IMPL=naive at import
    assert get_attn_impl() == 'reference'
    monkeypatch.setattr(attention_impl, '_default', 'fast')
    with pytest.raises(ValueError, match='MMJAFAR_ATTN_IMPL'):
        get_attn_impl()
