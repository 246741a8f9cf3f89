"""LoftUp: golden parity (batch-wide min-max, fp32 sinusoid order), checkpoint formats, errors."""
import pytest
import torch
from mmengine.runner import load_checkpoint

from mmjafar.models.layers.fourier import FourierFeatures, batch_min_max_scale
from mmjafar.models.upsamplers import LoftUp
from tests.conftest import assert_golden_output, compact, load_golden

TOL = dict(atol=1e-4, rtol=1e-4)


@pytest.fixture(scope='module')
def golden():
    data = load_golden('loftup', 'a')
    model = LoftUp(**data['constructor']).eval()
    model.load_state_dict(data['state_dict'])  # strict
    return model, data


def test_golden_parity(golden):
    model, data = golden
    with torch.no_grad():
        out = model(data['inputs']['image'], data['inputs']['features'])
    assert_golden_output(model, data, out, **TOL)


def test_min_max_statistics_are_batch_wide(golden):
    model, data = golden
    image, features = data['inputs']['image'], data['inputs']['features']
    with torch.no_grad():
        alone = model(image[1:], features[1:])
    assert (compact(alone, data) - data['output'][1:]).abs().max() > 0.5  # sample 1 depends on sample 0's extremes
    scaled = batch_min_max_scale(image)
    assert scaled.amin(dim=(0, 2, 3)).eq(-0.5).all() and scaled.amax(dim=(0, 2, 3)).eq(0.5).all()


def test_state_dict_keys_are_official(golden):
    _, data = golden
    assert list(LoftUp(**data['constructor']).state_dict()) == list(data['state_dict'])


def test_fourier_layout_and_fp32_order():
    """Frequency-major channels; the phase bias is a plain reshape; argument = (signal * freq) + phase."""
    feat = FourierFeatures(color_feats=False, n_freqs=3)
    with torch.no_grad():
        feat.biases.copy_(torch.arange(12.).view(2, 2, 3) / 10)
    out = feat(torch.zeros(1, 1, 2, 4))
    rows = torch.linspace(-1, 1, 2)
    freqs = torch.exp(torch.linspace(-2, 10, 3))
    phase = feat.biases[0].reshape(3, 2)
    # channel f * 2 + 0 is the row signal at frequency f
    for f in range(3):
        expected = torch.sin(rows[:, None].expand(2, 4) * freqs[f] + phase[f, 0])
        torch.testing.assert_close(out[0, 2 * f], expected, atol=0, rtol=0)
    assert out.shape == (1, 12, 2, 4)


def test_output_size_resizes_the_guidance(golden):
    model, data = golden
    image, features = data['inputs']['image'], data['inputs']['features']
    with torch.no_grad():
        out = model(image, features, (20, 24))
        expected = model.upsampler(model.channelnorm(features), torch.nn.functional.adaptive_avg_pool2d(image,
                                                                                                   (20, 24)))
    torch.testing.assert_close(out, expected, atol=0, rtol=0)


def test_training_checkpoint_layout(golden, tmp_path):
    """upstream load_loftup_checkpoint's format: state_dict with upsampler.* and the norm as model.1.norm.*."""
    _, data = golden
    sd = data['state_dict']
    weights = {k: v for k, v in sd.items() if k.startswith('upsampler.')}
    weights['model.1.norm.weight'] = sd['channelnorm.norm.weight']
    weights['model.1.norm.bias'] = sd['channelnorm.norm.bias']
    weights['model.0.cls_token'] = torch.zeros(1, 1, 384)
    path = tmp_path / 'loftup_train.ckpt'
    torch.save({'state_dict': weights, 'epoch': 1}, path)
    model = LoftUp(**data['constructor']).eval()
    load_checkpoint(model, str(path), strict=True, logger='silent')
    hub = tmp_path / 'pytorch_model.bin'
    torch.save(dict(sd), hub)
    model2 = LoftUp(**data['constructor'], init_cfg=dict(type='Pretrained', checkpoint=str(hub)))
    model2.init_weights()
    for k, v in sd.items():
        torch.testing.assert_close(model.state_dict()[k].float(), v.float(), msg=k)
        torch.testing.assert_close(model2.state_dict()[k].float(), v.float(), msg=k)


def test_wrong_checkpoints_fail_in_one_line(golden):
    _, data = golden
    with pytest.raises(ValueError, match='dim=384 but this module was built with dim=768') as err:
        LoftUp(dim=768).load_state_dict(data['state_dict'])
    assert '\n' not in str(err.value)
    jafar = load_golden('jafar')['state_dict']
    with pytest.raises(ValueError, match='another method'):
        LoftUp(dim=384).load_state_dict(jafar)
    with pytest.raises(ValueError, match="lr_pe_type='sine'"):
        LoftUp(lr_pe_type='learnable')


def test_backward():
    torch.manual_seed(0)
    model = LoftUp(dim=16, num_heads=2).train()
    features = torch.randn(2, 16, 2, 3, requires_grad=True)
    model(torch.randn(2, 3, 8, 12), features).square().mean().backward()
    assert features.grad.abs().sum() > 0
    assert all(p.grad is not None for p in model.parameters())
