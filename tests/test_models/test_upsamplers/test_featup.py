"""FeatUp JBUStack: golden parity with the official code, Lightning checkpoint layout, feature norm, errors."""
import pytest
import torch
import torch.nn.functional as F
from mmengine.runner import load_checkpoint

from mmjafar.models.layers.channel_norm import ChannelNorm
from mmjafar.models.upsamplers import JBUStack
from tests.conftest import assert_golden_output, compact, golden_cases, load_golden

TOL = dict(atol=5e-5, rtol=1e-4)


def golden_model(name='a', **kwargs):
    data = load_golden('featup', name)
    model = JBUStack(**data['constructor'], **kwargs).eval()
    model.load_state_dict(data['state_dict'])  # strict
    return model, data


def lightning_file(state_dict, norm=True):
    """The layout of FeatUp's released .ckpt files: Lightning metadata, backbone, norm, training modules."""
    weights = {'upsampler.' + k: v for k, v in state_dict.items()}
    weights['model.0.model.cls_token'] = torch.zeros(1, 1, 384)
    weights['downsampler.kernel'] = torch.zeros(1, 1, 7, 7)
    weights['scale_net.net.weight'] = torch.zeros(1, 384, 1, 1)
    if norm:
        weights['model.1.norm.weight'] = torch.linspace(0.5, 1.5, 384)
        weights['model.1.norm.bias'] = torch.linspace(-0.1, 0.1, 384)
    return {'state_dict': weights, 'epoch': 0, 'global_step': 2000, 'pytorch-lightning_version': '1.9.0'}


@pytest.mark.parametrize('case', golden_cases('featup'))  # a, b
def test_golden_parity(case):
    model, data = golden_model(case)
    image, features = data['inputs']['image'], data['inputs']['features']
    with torch.no_grad():
        out = model(image, features, tuple(data['output'].shape[-2:]))
    assert_golden_output(model, data, out, **TOL)


@pytest.mark.parametrize('case', golden_cases('featup'))
def test_golden_stages(case):
    """The four x2 stages have the official resolutions and the official fix-up of the last gives the official
    output: the stages a visualisation shows are the ones the forward pass uses."""
    model, data = golden_model(case)
    features = data['inputs']['features']
    with torch.no_grad():
        out, stages = model.forward_stack(data['inputs']['image'], features, return_stages=True)
    h, w = features.shape[-2:]
    assert [tuple(s.shape[-2:]) for s in stages] == [(h * 2 ** i, w * 2 ** i) for i in (1, 2, 3, 4)]
    torch.testing.assert_close(compact(stages[-1] + 0.1 * model.fixup_proj(stages[-1]), data), data['output'], **TOL)
    assert_golden_output(model, data, out, **TOL)


def test_range_kernels_are_selective_and_normalised():
    model, data = golden_model()
    guidance = F.adaptive_avg_pool2d(data['inputs']['image'], (8, 8))
    with torch.no_grad():
        range_kernel = model.up1.range_kernel(guidance)
    torch.testing.assert_close(range_kernel.sum(1), torch.ones(1, 8, 8))
    assert range_kernel.max() > 5 / 49  # far from uniform: a transposed window would not match the golden


def test_state_dict_keys_are_official():
    data = load_golden('featup', 'a')
    assert list(JBUStack(**data['constructor']).state_dict()) == list(data['state_dict'])


def test_output_size_protocol():
    """x16 by the four stages, then bilinear to the requested size; default size = the image's."""
    model, data = golden_model('b')
    image, features = data['inputs']['image'], data['inputs']['features']
    with torch.no_grad():
        out = model(image, features, (20, 30))
        default = model(image, features)
    expected = F.interpolate(data['output'], (20, 30), mode='bilinear', align_corners=False)  # channel-wise
    torch.testing.assert_close(compact(out, data), expected, **TOL)
    assert default.shape[-2:] == image.shape[-2:]


def test_lightning_checkpoint_layout(tmp_path):
    data = load_golden('featup', 'a')
    image, features = data['inputs']['image'], data['inputs']['features']
    ckpt = lightning_file(data['state_dict'])
    path = tmp_path / 'dinov2_jbu_stack_cocostuff.ckpt'
    torch.save(ckpt, path)
    # 1. torch load_state_dict on the whole file, strict: norm dropped (feature_norm=False)
    model = JBUStack(feat_dim=384).eval()
    model.load_state_dict(torch.load(path, weights_only=True))
    with torch.no_grad():
        assert_golden_output(model, data, model(image, features, (64, 64)), **TOL)
    # 2. mmengine load_checkpoint and init_cfg, strict, with the feature norm of the hub model
    model = JBUStack(feat_dim=384, feature_norm=True).eval()
    load_checkpoint(model, str(path), strict=True, logger='silent')
    torch.testing.assert_close(model.feature_norm.norm.weight, ckpt['state_dict']['model.1.norm.weight'])
    model2 = JBUStack(feat_dim=384, feature_norm=True, init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    model2.init_weights()
    model2.eval()
    norm = ChannelNorm(384)
    norm.norm.weight.data.copy_(ckpt['state_dict']['model.1.norm.weight'])
    norm.norm.bias.data.copy_(ckpt['state_dict']['model.1.norm.bias'])
    bare, _ = golden_model()
    with torch.no_grad():
        expected = bare(image, norm(features), (64, 64))
        torch.testing.assert_close(model(image, features, (64, 64)), expected, **TOL)
        torch.testing.assert_close(model2(image, features, (64, 64)), expected, **TOL)


def test_feature_norm_needs_norm_in_checkpoint():
    data = load_golden('featup', 'a')
    with pytest.raises(ValueError, match='no channel norm'):
        JBUStack(feat_dim=384, feature_norm=True).load_state_dict(data['state_dict'])


def test_wrong_checkpoints_fail_in_one_line():
    lift = load_golden('lift')['state_dict']
    with pytest.raises(ValueError, match='another method') as err:
        JBUStack(feat_dim=384).load_state_dict(lift)
    assert '\n' not in str(err.value)
    featup = load_golden('featup')['state_dict']
    with pytest.raises(ValueError, match='feat_dim=384 but this module was built with feat_dim=768') as err:
        JBUStack(feat_dim=768).load_state_dict(featup)
    assert '\n' not in str(err.value)


def test_input_errors():
    model = JBUStack(feat_dim=8)
    with pytest.raises(ValueError, match='needs the guidance image'):
        model(None, torch.randn(1, 8, 2, 2), (32, 32))
    with pytest.raises(ValueError, match='built for 8'):
        model(torch.randn(1, 3, 32, 32), torch.randn(1, 4, 2, 2), (32, 32))
    with pytest.raises(ValueError, match='reflect padding'):
        model(torch.randn(1, 3, 32, 32), torch.randn(1, 8, 1, 1), (16, 16))


def test_backward_reaches_every_parameter():
    torch.manual_seed(0)
    model = JBUStack(feat_dim=8).train()
    features = torch.randn(1, 8, 2, 2, requires_grad=True)
    model(torch.randn(1, 3, 32, 32), features, (24, 24)).square().mean().backward()
    assert features.grad is not None and features.grad.abs().sum() > 0
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
