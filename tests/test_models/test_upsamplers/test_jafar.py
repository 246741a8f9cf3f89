"""JAFAR: golden parity with the official code, checkpoint formats, lean vs naive, dtypes, errors."""
import logging

import pytest
import torch
from mmengine.logging import MMLogger
from mmengine.runner import load_checkpoint

from mmjafar.models.layers import averaged_attention, banded_norm_conv, fused_norm_act
from mmjafar.models.upsamplers import JAFAR
from tests.conftest import assert_golden_output, build_golden, compact, golden_cases, load_golden

CASES = golden_cases('jafar')  # a, a_56, b, c


def golden_model(name='a', **kwargs):
    return build_golden('jafar', JAFAR, name, **kwargs)


@pytest.mark.parametrize('impl', ['auto', 'reference'])
@pytest.mark.parametrize('case', CASES)
def test_golden_parity(case, impl):
    model, data = golden_model(case, impl=impl)
    assert_golden_output(model, data)


@pytest.mark.parametrize('case', CASES)
def test_golden_attention_maps(case):
    """The materialised head-averaged weights (what visualisations show) times the raw features give the official
    output: the maps are the ones the official forward pass uses, not just a map of the right shape."""
    model, data = golden_model(case)
    inputs = data['inputs']
    weights = model.attention_maps(inputs['image'], inputs['features'], inputs['output_size'])
    b, c, h, w = inputs['features'].shape
    assert weights.shape == (b, inputs['output_size'][0] * inputs['output_size'][1], h * w)
    torch.testing.assert_close(weights.sum(-1), torch.ones(weights.shape[:2]))
    values = compact(inputs['features'], data).flatten(2)
    out = torch.einsum('bqk,bck->bcq', weights, values).reshape(data['output'].shape)
    torch.testing.assert_close(out, data['output'], atol=1e-4, rtol=1e-4)
    # far from uniform, so a transposed or shifted map would be caught
    assert weights.max() > 10 / weights.shape[-1]
    shifted = torch.einsum('bqk,bck->bcq', weights.roll(1, dims=-1), values).reshape(data['output'].shape)
    assert (shifted - data['output']).abs().max() > 1e-2


def test_state_dict_keys_are_official():
    data = load_golden('jafar', 'a')
    assert list(JAFAR(**data['constructor']).state_dict()) == list(data['state_dict'])


def test_checkpoint_layouts(tmp_path, caplog):
    data = load_golden('jafar', 'a')
    sd = data['state_dict']
    inputs = data['inputs']
    extra = {'query_features_encoder.0.weight': torch.zeros(128, 384, 1, 1)}
    layouts = {
        'bare.pth': dict(sd),
        'train.pth': {'jafar': dict(sd), 'optimizer': {}, 'step': 10},
        'extra.pth': {**sd, **extra},
        'ddp.pth': {'module.' + k: v for k, v in sd.items()},
    }
    for name, content in layouts.items():
        torch.save(content, tmp_path / name)
        # 1. plain torch load_state_dict, strict
        model = JAFAR(**data['constructor']).eval()
        model.load_state_dict(content if name != 'train.pth' else content['jafar'])
        # 2. mmengine load_checkpoint (strict) from the file
        model = JAFAR(**data['constructor']).eval()
        load_checkpoint(model, str(tmp_path / name), strict=True, logger='silent')
        with torch.no_grad():
            out = model(inputs['image'], inputs['features'], inputs['output_size'])
        assert out.shape == data['output_shape']
        torch.testing.assert_close(compact(out, data), data['output'], atol=1e-4, rtol=1e-4, msg=name)
        # 3. init_cfg Pretrained (what an mm config uses)
        model = JAFAR(**data['constructor'], init_cfg=dict(type='Pretrained', checkpoint=str(tmp_path / name)))
        model.init_weights()
        for k, v in sd.items():
            torch.testing.assert_close(model.state_dict()[k], v.float(), msg=f'{name}: {k}')


def test_extra_keys_are_logged():
    data = load_golden('jafar', 'a')
    logger = MMLogger.get_current_instance()
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger.addHandler(handler)
    try:
        JAFAR(**data['constructor']).load_state_dict(
            {**data['state_dict'], 'query_features_encoder.1.conv1.weight': torch.zeros(1)})
    finally:
        logger.removeHandler(handler)
    assert any('query_features_encoder' in r.getMessage() for r in records)


def test_wrong_checkpoint_errors():
    data = load_golden('jafar', 'a')
    with pytest.raises(ValueError, match='checkpoint has v_dim=384 but this module was built with v_dim=768'):
        JAFAR(v_dim=768).load_state_dict(data['state_dict'])
    with pytest.raises(ValueError, match='another method'):
        JAFAR().load_state_dict({'up1.range_temp': torch.tensor(1.0)}, strict=False)


def test_input_errors():
    model = JAFAR(v_dim=8, qk_dim=32, num_heads=4)
    img, feats = torch.randn(2, 3, 32, 32), torch.randn(2, 8, 4, 4)
    with pytest.raises(ValueError, match='features have 9 channels but the module was built for 8'):
        model(img, torch.randn(2, 9, 4, 4), (8, 8))
    with pytest.raises(ValueError, match='batch'):
        model(img[:1], feats, (8, 8))
    with pytest.raises(ValueError, match='4-D'):
        model(img, feats[0], (8, 8))
    with pytest.raises(ValueError, match='4-D'):
        model(img[0], feats, (8, 8))
    with pytest.raises(ValueError, match='positive'):
        model(img, feats, (0, 8))
    with pytest.raises(ValueError, match='NaN or Inf'):
        model(img, feats.clone().index_fill_(0, torch.tensor([1]), float('nan')), (8, 8))
    with pytest.raises(ValueError, match='NaN or Inf'):
        model(img.clone().fill_(float('inf')), feats, (8, 8))
    # opt-out flag
    JAFAR(v_dim=8, qk_dim=32, check_inputs=False)(img, feats.clone().fill_(float('nan')), (8, 8))


@pytest.mark.parametrize('size', [(5, 7), (8, 8), (13, 4), (40, 24), (2, 2)])
def test_any_output_size_lean_equals_naive(size):
    torch.manual_seed(0)
    lean = JAFAR(v_dim=16, qk_dim=32, impl='torch', chunk_elements=97).eval()
    naive = JAFAR(v_dim=16, qk_dim=32, impl='reference').eval()
    naive.load_state_dict(lean.state_dict())
    img, feats = torch.randn(2, 3, 24, 20), torch.randn(2, 16, 6, 5)
    with torch.no_grad():
        out = lean(img, feats, size)
        ref = naive(img, feats, size)
    assert out.shape == (2, 16, *size)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize('size', [(12, 10), (16, 16)])
def test_lean_gradients_equal_naive(size, monkeypatch):
    """Every gradient of the lean training path (fused blocks with the stems folded in, the pooled key block, the
    banded query norm + convolution, several chunks and bands each) equals the official order's; at the image's
    size the queries skip the pooling."""
    monkeypatch.setattr(fused_norm_act, 'CHUNK_ELEMENTS', 32 * 16 * 3)
    monkeypatch.setattr(banded_norm_conv, 'BAND_ELEMENTS', 32 * 16 * 5)
    torch.manual_seed(0)
    lean = JAFAR(v_dim=16, qk_dim=32, impl='torch', chunk_elements=64).double()
    naive = JAFAR(v_dim=16, qk_dim=32, impl='reference').double()
    naive.load_state_dict(lean.state_dict())
    img = torch.randn(2, 3, 16, 16, dtype=torch.float64)
    feats = torch.randn(2, 16, 4, 4, dtype=torch.float64, requires_grad=True)
    grads = []
    for model in (lean, naive):
        model.zero_grad()
        feats.grad = None
        out = model(img, feats, size)
        (out * torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view_as(out)).sum().backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
                     | {'features': feats.grad.clone()})
    assert grads[0].keys() == grads[1].keys()
    for name in grads[0]:
        torch.testing.assert_close(grads[0][name], grads[1][name], atol=1e-9, rtol=1e-7, msg=name)
    # the parameters the official forward never uses are frozen, everything else learns
    frozen = {n for n, p in lean.named_parameters() if not p.requires_grad}
    assert frozen == {'cross_decode.cross_attn.norm_v.weight', 'cross_decode.cross_attn.attention.v_proj_weight',
                      'cross_decode.cross_attn.attention.out_proj.weight',
                      'cross_decode.cross_attn.attention.out_proj.bias'}
    assert set(grads[0]) == {n for n, p in lean.named_parameters() if p.requires_grad} | {'features'}


def test_averaged_attention_gradcheck():
    torch.manual_seed(0)
    q = torch.randn(1, 2, 7, 3, dtype=torch.float64, requires_grad=True)
    k = torch.randn(1, 2, 5, 3, dtype=torch.float64, requires_grad=True)
    v = torch.randn(1, 5, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda *x: averaged_attention(*x, impl='torch', chunk_elements=20), (q, k, v))


def test_reduced_precision():
    model, data = golden_model('b')
    inputs = data['inputs']
    ref = data['output']
    with torch.no_grad(), torch.autocast('cpu', dtype=torch.bfloat16):
        out_bf16 = compact(model(inputs['image'], inputs['features'], inputs['output_size']), data)
    assert torch.isfinite(out_bf16).all()
    # bf16 keeps 8 mantissa bits: relative error of the output stays within a few percent of its range
    assert (out_bf16.float() - ref).abs().max() < 0.1 * ref.abs().max()  # measured 0.167 of 2.84 (5.9 %)
    half = model.half()
    with torch.no_grad():
        out_half = compact(half(inputs['image'].half(), inputs['features'].half(), inputs['output_size']), data)
    assert out_half.dtype == torch.float16
    assert (out_half.float() - ref).abs().max() < 0.01 * ref.abs().max()  # measured 0.016 of 2.84 (0.6 %)


def test_default_output_size_policy():
    model = JAFAR(v_dim=8, qk_dim=32).eval()
    img, feats = torch.randn(1, 3, 20, 28), torch.randn(1, 8, 5, 7)
    assert model(img, feats).shape[-2:] == (20, 28)
    assert JAFAR(v_dim=8, qk_dim=32, scale_factor=2)(img, feats).shape[-2:] == (10, 14)
    assert JAFAR(v_dim=8, qk_dim=32, output_size=9)(img, feats).shape[-2:] == (9, 9)


def test_frozen():
    model = JAFAR(v_dim=8, qk_dim=32, frozen=True)
    assert not any(p.requires_grad for p in model.parameters())
    model.train()
    assert not model.training
