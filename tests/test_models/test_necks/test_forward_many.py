"""forward_many: several maps and output sizes guided by one image, the image encoded once."""
import sys

import pytest
import torch

from mmjafar.registry import MODELS

# every method whose image encoding is shared, plus two that loop (one guided, one not)
CASES = {
    'JAFAR': dict(type='JAFAR', v_dim=16, qk_dim=16, num_heads=2),
    'JAFAR-reference': dict(type='JAFAR', v_dim=16, qk_dim=16, num_heads=2, impl='reference'),
    'AnyUp': dict(type='AnyUp', qk_dim=16, num_heads=2),
    'NAF': dict(type='NAF', dim=16, kernel_size=3),
    'LoftUp': dict(type='LoftUp', dim=16, num_heads=2),
    'JBUStack': dict(type='JBUStack', feat_dim=16),
    'CARAFE': dict(type='CARAFE', channels=16, impl='torch'),
}
# what runs once per image encoding: a function of the method's module (counted by wrapping it) and the calls
# one encoding makes, or a submodule (counted by a forward hook)
IMAGE_ENCODERS = {'JAFAR': ('apply_rope_2d', 1), 'JAFAR-reference': 'image_encoder.0', 'AnyUp': 'image_encoder.0',
                  'NAF': ('encode_and_pool_many', 2), 'LoftUp': 'upsampler.first_conv'}


def inputs():
    torch.manual_seed(0)
    image = torch.randn(2, 3, 48, 40)
    feats = [torch.randn(2, 16, 6, 5), torch.randn(2, 16, 6, 5), torch.randn(2, 16, 3, 3)]
    return image, feats, [(24, 20), (12, 10), (12, 10)]


@pytest.mark.parametrize('name', sorted(CASES))
def test_equals_separate_calls(name):
    up = MODELS.build(CASES[name]).eval()
    image, feats, sizes = inputs()
    with torch.no_grad():
        many = up.forward_many(image, feats, sizes)
        single = [up(image, f, s) for f, s in zip(feats, sizes)]
    for a, b, s in zip(many, single, sizes):
        assert a.shape[-2:] == s
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize('name', sorted(IMAGE_ENCODERS))
def test_image_encoded_once(name, monkeypatch):
    up = MODELS.build(CASES[name]).eval()
    calls, target, expected = [], IMAGE_ENCODERS[name], 1
    if isinstance(target, tuple):
        (target, expected), module = target, sys.modules[type(up).__module__]
        original = getattr(module, target)
        monkeypatch.setattr(module, target, lambda *a, **k: calls.append(1) or original(*a, **k))
    else:
        up.get_submodule(target).register_forward_hook(lambda *a: calls.append(1))
    image, feats, sizes = inputs()
    if name == 'LoftUp':  # LoftUp's queries live on the output grid: one encoding per distinct size
        sizes = [(12, 10)] * 3
    with torch.no_grad():
        up.forward_many(image, feats, sizes)
    assert len(calls) == expected


def test_gradients_flow_through_the_shared_encoding():
    up = MODELS.build(CASES['JAFAR'])
    image, feats, sizes = inputs()
    feats = [f.requires_grad_() for f in feats]
    sum(o.square().mean() for o in up.forward_many(image, feats, sizes)).backward()
    assert all(f.grad is not None and f.grad.abs().sum() > 0 for f in feats)
    assert all(p.grad is not None for n, p in up.named_parameters() if not n.startswith('cross_decode.cross_attn.'))


def test_mismatched_lengths_are_an_error():
    up = MODELS.build(CASES['JAFAR'])
    image, feats, sizes = inputs()
    with pytest.raises(ValueError, match='3 feature maps but 2 output sizes'):
        up.forward_many(image, feats, sizes[:2])


def test_staged_methods_stop_at_the_output_size():
    up = MODELS.build(CASES['CARAFE']).eval()
    calls = []
    for i in range(1, 5):
        getattr(up, f'up{i}').register_forward_hook(lambda *a, i=i: calls.append(i))
    with torch.no_grad():
        out = up(None, torch.randn(1, 16, 4, 4), (14, 14))  # x3.5: two x2 stages, then a resize down
    assert calls == [1, 2] and out.shape == (1, 16, 14, 14)
