"""AnyUp: golden parity with the official code, checkpoint layouts, lean vs naive, NATTEN variant, any width."""
import pytest
import torch
import torch.nn.functional as F
from mmengine.registry import MODELS
from mmengine.runner import load_checkpoint

from mmjafar.models.layers import LearnedFeatureUnification, gaussian_derivative_basis
from mmjafar.models.layers.neighborhood_attention import neighborhood_indices, nearest_exact_indices
from mmjafar.models.upsamplers import AnyUp
from tests.conftest import assert_golden_output, build_golden, compact, golden_cases, load_golden

CASES = golden_cases('anyup')  # a, b


def golden_model(name='a', **kwargs):
    return build_golden('anyup', AnyUp, name, **kwargs)


@pytest.mark.parametrize('impl', ['auto', 'reference'])
@pytest.mark.parametrize('case', CASES)
def test_golden_parity(case, impl):
    model, data = golden_model(case, impl=impl)
    assert_golden_output(model, data)


@pytest.mark.parametrize('case', CASES)
def test_golden_attention_maps(case):
    """The materialised windowed weights times the raw features give the official output; the window is the
    official one (a weight outside it, or a map shifted by one key, would not reproduce the output)."""
    model, data = golden_model(case)
    inputs = data['inputs']
    weights = model.attention_maps(inputs['image'], inputs['features'], inputs['output_size'])
    torch.testing.assert_close(weights.sum(-1), torch.ones(weights.shape[:2]))
    values = compact(inputs['features'], data).flatten(2)
    out = torch.einsum('bqk,bck->bcq', weights, values).reshape(data['output'].shape)
    torch.testing.assert_close(out, data['output'], atol=1e-4, rtol=1e-4)
    assert (weights == 0).any() and (weights > 0).sum(-1).max() > 1  # a window, neither global nor one key
    shifted = torch.einsum('bqk,bck->bcq', weights.roll(1, dims=-1), values).reshape(data['output'].shape)
    assert (shifted - data['output']).abs().max() > 1e-2


def official_unification(features, basis):
    """The official layer's arithmetic written plainly (all responses at once, the flat-index view)."""
    b, c, h, w = features.shape
    n, k = basis.shape[0], basis.shape[-1]
    x = F.conv2d(F.pad(features, [k // 2] * 4), basis.repeat(c, 1, 1, 1), groups=c)
    taps = F.conv2d(F.pad(torch.ones(1, 1, h, w), [k // 2] * 4), torch.ones(1, 1, k, k))
    return (x / taps).view(b, n, c, h, w).softmax(dim=1).mean(dim=2)


@pytest.mark.parametrize('channels', [24, 100, 7])  # a multiple of the filter count, and two that are not
def test_feature_unification_chunks_are_exact(channels):
    torch.manual_seed(0)
    layer = LearnedFeatureUnification(8, 5)
    feats = torch.randn(3, channels, 6, 7)
    expected = official_unification(feats, layer.basis)
    for budget in (None, 8 * 8 * 6 * 7 * 2):  # all at once, then chunks of columns and of the batch
        layer.chunk_elements = budget
        torch.testing.assert_close(layer(feats), expected, atol=1e-6, rtol=1e-5)


def test_gaussian_derivative_init():
    basis = gaussian_derivative_basis(128, 5)
    assert basis.shape == (128, 1, 5, 5)
    assert (basis[0] > 0).all() and torch.allclose(basis[0], basis[0].flip(-1)) and torch.allclose(
        basis[0], basis[0].transpose(-1, -2))  # order 0: a symmetric Gaussian
    torch.testing.assert_close(basis[1], -basis[1].flip(-2))  # first order: odd along one axis
    torch.testing.assert_close(basis[1], basis[2].transpose(-1, -2))
    layer = AnyUp(init_gaussian_derivatives=True).key_features_encoder[0]
    torch.testing.assert_close(layer.basis.data, basis)


def test_state_dict_keys_are_official():
    data = load_golden('anyup', 'a')
    assert list(AnyUp(**data['constructor']).state_dict()) == list(data['state_dict'])


def test_checkpoint_layouts(tmp_path):
    data = load_golden('anyup', 'b')
    sd, inputs = data['state_dict'], data['inputs']
    layouts = {
        'anyup_paper.pth': dict(sd),
        'train.pth': {'anyup': dict(sd), 'optimizer': {'lr': 1e-4}, 'step': 3},
        'ddp.pth': {'module.' + k: v for k, v in sd.items()},
    }
    for name, content in layouts.items():
        torch.save(content, tmp_path / name)
        model = MODELS.build(dict(type='AnyUp')).eval()
        load_checkpoint(model, str(tmp_path / name), strict=True)
        loaded = model.state_dict()
        assert all(torch.equal(loaded[k], v.float()) for k, v in sd.items()), name
    with torch.no_grad():  # the last one also computes the reference output
        out = model(inputs['image'], inputs['features'], inputs['output_size'])
    assert_golden_output(model, data, out)


def test_checkpoint_errors():
    sd = load_golden('anyup', 'a')['state_dict']
    with pytest.raises(ValueError, match='lfu_dim=128'):
        AnyUp(lfu_dim=64).load_state_dict(sd)
    with pytest.raises(ValueError, match='qk_dim=128'):
        AnyUp(qk_dim=64).load_state_dict(sd)
    swapped = {k: v for k, v in sd.items() if not k.startswith('cross_decode.cross_attn.attention')}
    swapped['cross_decode.cross_attn.q_proj.weight'] = torch.zeros(128, 128, 1, 1)
    with pytest.raises(ValueError, match='use_natten=True'):
        AnyUp().load_state_dict(swapped)


def test_lean_equals_naive_with_many_tiles_and_grads():
    torch.manual_seed(0)
    lean = AnyUp(impl='torch', chunk_elements=1 << 12)
    naive = AnyUp(impl='reference')
    naive.load_state_dict(lean.state_dict())
    image, features = torch.randn(1, 3, 30, 36), torch.randn(1, 24, 12, 10)
    outs, grads = [], []
    for model in (lean, naive):
        out = model(image, features, (30, 35))
        (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
        outs.append(out.detach())
        grads.append({n: p.grad for n, p in model.named_parameters() if p.grad is not None})
    torch.testing.assert_close(outs[0], outs[1], atol=1e-5, rtol=1e-5)
    assert grads[0].keys() == grads[1].keys() and len(grads[0]) > 50
    for name in grads[0]:  # float32 sums in another order: compare relative to each gradient's scale
        scale = grads[1][name].abs().max().item()
        torch.testing.assert_close(grads[0][name], grads[1][name], atol=1e-4 * scale, rtol=1e-3, msg=name)


def test_natten_variant_equals_dense_reference():
    """use_natten=True: NATTEN's neighbourhoods on the enlarged keys, weights averaged over heads, raw values."""
    model, data = golden_model('a', use_natten=True)
    image, features = data['inputs']['image'], data['inputs']['features']
    size = (40, 40)  # 8x8 grid: kernel odd(max(3, round(1.6))) = 3, dilation 5
    with torch.no_grad():
        out = model(image, features, size)
        queries, keys = model.queries_and_keys(image, features, size)
        block = model.cross_decode
        q, k = block.cross_attn.project(block.tokens(block.conv2d(queries)), block.tokens(keys))
    assert model.natten_window(size, (8, 8)) == ((3, 3), (5, 5))
    rows = nearest_exact_indices(40, 8)[neighborhood_indices(40, 3, 5)]  # (40, 3) key rows of the small grid
    cols = nearest_exact_indices(40, 8)[neighborhood_indices(40, 3, 5)]
    key_index = (rows[:, None, :, None] * 8 + cols[None, :, None, :]).reshape(1600, 9)
    kn = k[:, :, key_index]  # (B, heads, 1600, 9, d): taps as separate softmax entries
    probs = torch.einsum('bnqd,bnqtd->bnqt', q, kn).softmax(-1).mean(1)
    values = features.flatten(2).transpose(1, 2)[:, key_index]  # (B, 1600, 9, C)
    expected = torch.einsum('bqt,bqtc->bqc', probs, values).transpose(1, 2).reshape(1, 384, 40, 40)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-4)
    default = golden_model('a')[0]
    with torch.no_grad():
        assert (default(image, features, size) - out).abs().max() > 1e-3  # other windows, as upstream says
    with pytest.raises(ValueError, match='use_natten=False'):
        model(image, features[:, :, :2, :2], (16, 16))  # kernel 3 x dilation 8 > 16 (NATTEN would refuse)


@pytest.mark.parametrize('channels', [384, 768])
def test_one_instance_any_channel_count(channels):
    torch.manual_seed(0)
    model = AnyUp().eval()
    image = torch.randn(2, 3, 56, 70)
    with torch.no_grad():
        out = model(image, torch.randn(2, channels, 4, 5), (28, 35))
        flat = model(image, torch.full((2, channels, 4, 5), -1.5), (28, 35))
    assert out.shape == (2, channels, 28, 35) and torch.isfinite(out).all()
    torch.testing.assert_close(flat, torch.full_like(flat, -1.5))  # convex combinations of the features


def test_output_size_defaults_to_image():
    model = AnyUp().eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 20, 24), torch.randn(1, 10, 4, 4)).shape == (1, 10, 20, 24)
