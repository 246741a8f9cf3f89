"""NAF: golden parity with the official code, checkpoint loading, channel-agnostic use, errors."""
import pytest
import torch
from mmengine.registry import MODELS
from mmengine.runner import load_checkpoint

from mmjafar.models.upsamplers import NAF
from mmjafar.models.layers.neighborhood_attention import nearest_exact_indices, neighborhood_indices
from mmjafar.models.upsamplers.naf import NAFImageEncoder
from tests.conftest import assert_golden_output, build_golden, compact, golden_cases, load_golden

CASES = golden_cases('naf')  # a, b


def golden_model(name='a', **kwargs):
    return build_golden('naf', NAF, name, **kwargs)


@pytest.mark.parametrize('case', CASES)
def test_golden_parity(case):
    model, data = golden_model(case, impl='torch')
    assert_golden_output(model, data)


@pytest.mark.parametrize('case', CASES)
def test_golden_attention_logits(case):
    """The official ``return_weights`` logits, softmaxed over each query's dilated neighbourhood of the
    nearest-exact enlarged values (taps row-major), give the official output per head."""
    model, data = golden_model(case)
    inputs = data['inputs']
    features, (out_h, out_w) = inputs['features'], inputs['output_size']
    logits = model.attention_logits(inputs['image'], features, (out_h, out_w))
    (h, w), k = features.shape[-2:], model.kernel_size
    dil_h, dil_w = model.check_sizes(features, (out_h, out_w))
    rows = nearest_exact_indices(out_h, h)[neighborhood_indices(out_h, k, dil_h)]  # (H, k) rows of the grid
    cols = nearest_exact_indices(out_w, w)[neighborhood_indices(out_w, k, dil_w)]
    taps = (rows[:, None, :, None] * w + cols[None, :, None, :]).reshape(out_h, out_w, k * k)
    values = model._heads(features).flatten(2, 3)[:, :, taps]  # (B, heads, H, W, k*k, C / heads)
    out = torch.einsum('bnyxt,bnyxtd->bndyx', logits.softmax(-1), values).flatten(1, 2)
    torch.testing.assert_close(compact(out, data), data['output'], atol=1e-4, rtol=1e-4)
    assert logits.std() > 1  # far from uniform: a shifted neighbourhood would show
    flipped = torch.einsum('bnyxt,bnyxtd->bndyx', logits.flip(-1).softmax(-1), values).flatten(1, 2)
    assert (compact(flipped, data) - data['output']).abs().max() > 1e-2


def test_resize_rule_changes_aspect_ratio():
    # case_b: 126x168 image, output (27, 50): the encoders see 108x108, not an aspect-preserving size
    image = torch.zeros(1, 3, 126, 168)
    assert NAFImageEncoder.resized_image(image, (27, 50)).shape[-2:] == (108, 108)
    assert NAFImageEncoder.resized_image(image, (40, 50)).shape[-2:] == (126, 168)  # not more than 4x: kept


def test_state_dict_is_official_and_periods_are_loaded():
    data = load_golden('naf', 'a')
    model = NAF(**data['constructor'])
    assert list(model.state_dict()) == list(data['state_dict'])
    default_periods = model.image_encoder.rope.periods.clone()
    model.load_state_dict(data['state_dict'])
    loaded = model.image_encoder.rope.periods
    torch.testing.assert_close(loaded, data['state_dict']['image_encoder.rope.periods'].float())
    assert not torch.allclose(loaded, default_periods)  # the fixture perturbs it: it must come from the file
    # the buffer is what the forward pass uses
    model.eval()
    inputs = data['inputs']
    with torch.no_grad():
        out = model(inputs['image'], inputs['features'], inputs['output_size'])
        model.image_encoder.rope.periods.copy_(default_periods)
        other = model(inputs['image'], inputs['features'], inputs['output_size'])
    assert (out - other).abs().max() > 1e-2


def test_checkpoint_file_and_registry(tmp_path):
    data = load_golden('naf', 'b')
    path = tmp_path / 'naf_release.pth'
    torch.save(data['state_dict'], path)
    model = MODELS.build(dict(type='NAF')).eval()
    load_checkpoint(model, str(path), strict=True)
    inputs = data['inputs']
    with torch.no_grad():
        out = model(inputs['image'], inputs['features'], inputs['output_size'])
    assert_golden_output(model, data, out)
    assert isinstance(MODELS.build(dict(type='mmjafar.NAF', kernel_size=7)), NAF)


def test_checkpoint_of_other_width_is_rejected():
    data = load_golden('naf', 'a')
    with pytest.raises(ValueError, match='dim=256'):
        NAF(dim=128).load_state_dict(data['state_dict'])


@pytest.mark.parametrize('channels', [384, 768])
def test_one_instance_any_channel_count(channels):
    torch.manual_seed(0)
    model = NAF().eval()
    image = torch.randn(2, 3, 64, 80)
    features = torch.randn(2, channels, 9, 10)
    with torch.no_grad():
        out = model(image, features, (36, 40))
        flat = model(image, torch.ones(2, channels, 9, 10) * 2.5, (36, 40))
    assert out.shape == (2, channels, 36, 40) and torch.isfinite(out).all()
    torch.testing.assert_close(flat, torch.full_like(flat, 2.5))  # convex combinations of the values
    # each head filters its own C / heads channels: changing the last head's features leaves the others unchanged
    changed = features.clone()
    changed[:, -channels // 4:] += 1
    with torch.no_grad():
        out2 = model(image, changed, (36, 40))
    torch.testing.assert_close(out2[:, :-channels // 4], out[:, :-channels // 4])


def test_training_step_has_gradients():
    torch.manual_seed(0)
    model = NAF(img_layers=1).train()
    out = model(torch.randn(1, 3, 48, 48), torch.randn(1, 8, 9, 9), (18, 18))
    out.square().mean().backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert sum(g.abs().sum() for g in grads) > 0


def test_errors():
    model = NAF().eval()
    image = torch.randn(1, 3, 112, 112)
    with pytest.raises(ValueError, match='at least 9x9'):
        model(image, torch.randn(1, 384, 8, 8), (32, 32))
    with pytest.raises(ValueError, match='smaller than the feature grid'):
        model(image, torch.randn(1, 384, 10, 10), (9, 20))
    with pytest.raises(ValueError, match='divisible by heads_attn'):
        model(image, torch.randn(1, 30, 9, 9), (18, 18))
    with pytest.raises(ValueError, match='use_encoder'):
        NAF(use_encoder=False)
    with pytest.raises(ValueError, match='impl'):
        NAF(impl='cuda')
    with pytest.raises(ValueError, match='kernel_size must be odd'):
        NAF(kernel_size=8)
