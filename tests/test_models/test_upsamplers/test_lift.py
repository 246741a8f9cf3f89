"""LiFT: golden parity (token and NCHW layouts), checkpoint formats, stage protocol, errors."""
import pytest
import torch
import torch.nn.functional as F
from mmengine.runner import load_checkpoint

from mmjafar.models.upsamplers import LiFT
from tests.conftest import assert_golden_output, compact, load_golden

TOL = dict(atol=1e-5, rtol=1e-4)


def golden(name):
    data = load_golden('lift', name)
    model = LiFT(**data['constructor']).eval()
    model.load_state_dict(data['state_dict'])  # strict
    return model, data


def test_golden_tokens():
    model, data = golden('a_tokens')
    with torch.no_grad():
        out = model(data['inputs']['image'], data['inputs']['features'])  # default: tokens of the x2 grid
    assert out.shape == data['output_shape'] == (1, 256, 384)
    assert_golden_output(model, data, out, **TOL)


def test_golden_nchw():
    model, data = golden('b_nchw')
    image, features = data['inputs']['image'], data['inputs']['features']
    with torch.no_grad():
        out = model(image, features, (12, 20))
    assert_golden_output(model, data, out, **TOL)


def test_token_and_nchw_layouts_agree():
    data = load_golden('lift', 'b_nchw')
    tokens = LiFT(in_channels=384, pre_shape=True, post_shape=True).eval()
    tokens.load_state_dict(data['state_dict'])
    image, features = data['inputs']['image'], data['inputs']['features']
    with torch.no_grad():
        out = tokens(image, features.flatten(2).transpose(1, 2))
    assert out.shape == (2, 240, 384)
    torch.testing.assert_close(out[..., data['output_channels']], data['output'].flatten(2).transpose(1, 2), **TOL)


def test_stage_protocol():
    """One x2 stage, then bilinear to the requested size; more stages re-use the weights on a resized image."""
    model, data = golden('b_nchw')
    image, features = data['inputs']['image'], data['inputs']['features']
    with torch.no_grad():
        once = assert_golden_output(model, data, model(image, features, (12, 20)), **TOL)  # the official x2
        out = model(image, features, (30, 50))
        torch.testing.assert_close(compact(out, data), F.interpolate(data['output'], (30, 50), mode='bilinear',
                                                                     align_corners=False), **TOL)
        model.num_stages = 2
        twice = model(image, features, (24, 40))
        big = F.interpolate(image, (192, 320), mode='bilinear', align_corners=False)
        torch.testing.assert_close(twice, model.stage(big, once), **TOL)
        assert (twice - F.interpolate(once, (24, 40), mode='bilinear', align_corners=False)).abs().max() > 1e-2


def test_checkpoint_layouts(tmp_path):
    data = load_golden('lift', 'b_nchw')
    image, features = data['inputs']['image'], data['inputs']['features']
    path = tmp_path / 'lift_dino_vits16.pth'
    torch.save({'module.' + k: v for k, v in data['state_dict'].items()}, path)
    model = LiFT(in_channels=384).eval()
    model.load_state_dict(torch.load(path, weights_only=True))
    other = LiFT(in_channels=384, init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    other.init_weights()
    other.eval()
    third = LiFT(in_channels=384).eval()
    load_checkpoint(third, str(path), strict=True, logger='silent')
    with torch.no_grad():
        for m in (model, other, third):
            assert_golden_output(m, data, m(image, features, (12, 20)), **TOL)


def test_wrong_checkpoints_fail_in_one_line():
    lift = load_golden('lift')['state_dict']
    with pytest.raises(ValueError, match='in_channels=384 but this module was built with in_channels=768') as err:
        LiFT(in_channels=768).load_state_dict(lift)
    assert '\n' not in str(err.value)
    featup = load_golden('featup')['state_dict']
    with pytest.raises(ValueError, match='another method') as err:
        LiFT(in_channels=384).load_state_dict(featup)
    assert '\n' not in str(err.value)


def test_errors():
    model = LiFT(in_channels=16)
    with pytest.raises(ValueError, match='pre_shape=True'):
        model(torch.randn(1, 3, 32, 32), torch.randn(1, 4, 16), (4, 4))
    with pytest.raises(ValueError, match='do not fill'):
        LiFT(in_channels=16, pre_shape=True)(torch.randn(1, 3, 32, 32), torch.randn(1, 5, 16), (4, 4))
    with pytest.raises(ValueError, match='patch_size 8 or 16'):
        LiFT(patch_size=14)


def test_patch_8_and_backward():
    torch.manual_seed(0)
    model = LiFT(in_channels=16, patch_size=8).train()
    features = torch.randn(2, 16, 3, 4, requires_grad=True)
    out = model(torch.randn(2, 3, 24, 32), features, (6, 8))
    assert out.shape == (2, 16, 6, 8)
    out.square().mean().backward()
    assert all(p.grad is not None for p in model.parameters())
