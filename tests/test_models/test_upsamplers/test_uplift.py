"""UPLiFT: parity with the official module (tests/data/uplift.pt), released checkpoint layouts, step protocol,
Local Attender, errors."""
import copy
import os

import pytest
import torch
import torch.nn.functional as F
from mmengine.runner import load_checkpoint

from mmjafar.models.layers.local_attender import NEIGHBOURHOODS, LocalAttender, local_attend
from mmjafar.models.upsamplers import UPLiFT
from mmjafar.models.upsamplers.uplift import ARCHS
from mmjafar.registry import MODELS

FIXTURE = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), 'data',
                       'uplift.pt')
TOL = dict(atol=1e-4, rtol=1e-4)


@pytest.fixture(scope='module')
def fixture():
    return torch.load(FIXTURE, weights_only=True)


def built(data, name):
    case = data['cases'][name]
    model = UPLiFT(**case['constructor']).eval()
    model.load_state_dict({k: v.float() for k, v in case.get('state_dict', data['state_dict']).items()})  # strict
    return model, case


def compare(model, case):
    inputs = case['inputs']
    with torch.no_grad():
        out = model(inputs['image'], inputs['features'], inputs['output_size'])
    assert tuple(out.shape) == tuple(case['output_shape'])
    kept = out.index_select(case['output_channel_dim'], case['output_channels'])
    torch.testing.assert_close(kept, case['output'], **TOL)
    return out


@pytest.mark.parametrize('name', ['a_dinov3_splus16', 'b_dinov2_s14', 'c_batch2_resize', 'd_custom_recompute',
                                  'e_custom_no_attender'])
def test_official_parity(fixture, name):
    model, case = built(fixture, name)
    compare(model, case)


def test_presets_are_the_released_configs(fixture):
    for name, config in fixture['reference']['configs'].items():
        assert ARCHS[name]['arch'] == config['uplift']
        assert ARCHS[name]['in_channels'] == config['backbone']['channel']
        assert ARCHS[name]['patch_size'] == config['backbone']['patch']


def test_released_checkpoint_layouts(fixture, tmp_path):
    """The released .safetensors (bare official keys) by path; .pth bare, wrapped or prefixed; mmengine loaders."""
    from safetensors.torch import save_file
    state = {k: v.float() for k, v in fixture['state_dict'].items()}
    case = fixture['cases']['a_dinov3_splus16']
    save_file(state, str(tmp_path / 'uplift_dinov3-splus16.safetensors'))
    compare(UPLiFT(arch='dinov3-splus16', checkpoint=str(tmp_path / 'uplift_dinov3-splus16.safetensors')).eval(),
            case)
    layouts = {'bare': state, 'wrapped': {'uplift': state, 'epoch': 3},
               'prefixed': {'module.uplift.' + k: v for k, v in state.items()},
               'state_dict': {'state_dict': {'model.' + k: v for k, v in state.items()}}}

    def same_weights(model):
        loaded = model.state_dict()
        assert loaded.keys() == state.keys() and all(torch.equal(loaded[k], v.to(loaded[k].dtype)) for k, v in state.items())

    for name, content in layouts.items():
        path = tmp_path / f'{name}.pth'
        torch.save(content, path)
        same_weights(UPLiFT(arch='dinov3-splus16', checkpoint=str(path)))
        model = UPLiFT(arch='dinov3-splus16')
        load_checkpoint(model, str(path), strict=True, logger='silent')
        same_weights(model)
    for name in ('bare.pth', 'uplift_dinov3-splus16.safetensors'):
        model = UPLiFT(arch='dinov3-splus16', frozen=True,
                       init_cfg=dict(type='Pretrained', checkpoint=str(tmp_path / name)))
        model.init_weights()
        assert model.is_init and not model.training and not any(p.requires_grad for p in model.parameters())
        same_weights(model)
    compare(model, case)


def test_vae_layout_builds_and_loads():
    """The SD 1.5 VAE model (layer norms, refiner, noise channels): its key layout round-trips strictly."""
    model = UPLiFT(arch='sd15-vae')
    keys = set(model.state_dict())
    assert 'refiner.blocks.11.conv.3.weight' in keys and 'ref_outc.weight' in keys
    assert 'encoder.block_4.blocks.1.conv.1.weight' in keys and 'attender.conv1.weight' in keys
    UPLiFT(arch='sd15-vae').load_state_dict(model.state_dict())
    out = model.eval()(torch.randn(1, 3, 32, 32), torch.randn(1, 4, 4, 4), (8, 8))
    assert out.shape == (1, 4, 8, 8)


def test_step_protocol(fixture):
    """Default steps reach the output size, then one antialiased bilinear resize; ``iters`` overrides."""
    model, case = built(fixture, 'a_dinov3_splus16')
    image, feats = case['inputs']['image'], case['inputs']['features']
    with torch.no_grad():
        full = model(image, feats)  # the image's size by default: 4 steps
        assert full.shape == (1, 384, 48, 64)
        assert model.num_steps(feats, (24, 32)) == 3 and model.num_steps(feats, (25, 32)) == 4
        assert model.num_steps(feats, (3, 4)) == 0 and model.num_steps(feats, (2, 2)) == 0
        torch.testing.assert_close(model(image, feats, (3, 4)), feats)
        small = model(image, feats, (30, 40))
        torch.testing.assert_close(small, F.interpolate(full, (30, 40), mode='bilinear', align_corners=False,
                                                        antialias=True), **TOL)
        model.iters = 1
        assert model(image, feats, (48, 64)).shape == (1, 384, 48, 64)


def test_output_is_a_convex_combination_of_neighbours(fixture):
    """Every output of a released-architecture step lies within the range of its input's 5x5 neighbourhood."""
    model, case = built(fixture, 'a_dinov3_splus16')
    feats = case['inputs']['features']
    with torch.no_grad():
        out = model(case['inputs']['image'], feats, (6, 8))
    pooled_max = F.max_pool2d(F.pad(feats, (2, 2, 2, 2), mode='replicate'), 5, stride=1)
    pooled_min = -F.max_pool2d(F.pad(-feats, (2, 2, 2, 2), mode='replicate'), 5, stride=1)
    up = dict(scale_factor=2, mode='nearest')
    assert (out <= F.interpolate(pooled_max, **up) + 1e-5).all()
    assert (out >= F.interpolate(pooled_min, **up) - 1e-5).all()


@pytest.mark.parametrize('size', sorted(NEIGHBOURHOODS))
def test_local_attend_matches_stacked_reference(size):
    """The streamed weighted sum equals the definition computed with all shifted maps stacked."""
    torch.manual_seed(size)
    value, weights = torch.randn(2, 5, 3, 4), torch.randn(2, size, 9, 12).softmax(1)
    offsets = NEIGHBOURHOODS[size]
    pad = 2
    padded = F.pad(value, (pad, pad, pad, pad), mode='replicate')
    stack = torch.stack([padded[:, :, pad + dy:pad + dy + 3, pad + dx:pad + dx + 4] for dy, dx in offsets], 2)
    stack = stack.repeat_interleave(3, -2).repeat_interleave(3, -1)  # (B, C, D, 9, 12)
    expected = (stack * weights[:, None]).sum(2)
    torch.testing.assert_close(local_attend(weights, value, offsets), expected)
    assert len(set(offsets)) == size and (0, 0) in offsets


def test_local_attend_backward_matches_autograd():
    """The hand-written backward equals autograd through the stacked definition (and gradcheck in float64)."""
    torch.manual_seed(0)
    offsets = NEIGHBOURHOODS[17]
    value = torch.randn(2, 3, 3, 4, dtype=torch.float64, requires_grad=True)
    logits = torch.randn(2, 17, 6, 8, dtype=torch.float64, requires_grad=True)
    torch.autograd.gradcheck(lambda lg, v: local_attend(lg.softmax(1), v, offsets), (logits, value), fast_mode=True)
    out = local_attend(logits.softmax(1), value, offsets)
    padded = F.pad(value, (2, 2, 2, 2), mode='replicate')
    stack = torch.stack([padded[:, :, 2 + dy:5 + dy, 2 + dx:6 + dx] for dy, dx in offsets], 2)
    ref = (stack.repeat_interleave(2, -2).repeat_interleave(2, -1) * logits.softmax(1)[:, None]).sum(2)
    upstream = torch.randn_like(out)
    ours = torch.autograd.grad(out, (logits, value), upstream)
    theirs = torch.autograd.grad(ref, (logits, value), upstream)
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b)


def test_backward_and_registry():
    torch.manual_seed(0)
    model = MODELS.build(dict(type='UPLiFT', arch='dinov3-splus16', in_channels=32)).train()
    feats = torch.randn(2, 32, 2, 3, requires_grad=True)
    out = model(torch.randn(2, 3, 32, 48), feats, (16, 24))
    assert out.shape == (2, 32, 16, 24)
    out.square().mean().backward()
    assert feats.grad is not None and all(p.grad is not None for p in model.parameters())
    assert UPLiFT.channels_arg == 'in_channels' and model.in_channels == 32


def test_wrong_checkpoints_fail_in_one_line(fixture):
    state = {k: v.float() for k, v in fixture['state_dict'].items()}
    with pytest.raises(ValueError, match='in_channels=384 but this module was built with in_channels=768') as err:
        UPLiFT(arch='dinov2-s14', in_channels=768).load_state_dict(state)
    assert '\n' not in str(err.value)
    with pytest.raises(ValueError, match='does not fit arch=\'sd15-vae\'') as err:
        UPLiFT(arch='sd15-vae').load_state_dict(state)
    assert '\n' not in str(err.value)
    jafar_like = {'image_encoder.0.weight': torch.zeros(128, 3, 1, 1), 'norm.weight': torch.zeros(128)}
    with pytest.raises(ValueError, match='another method') as err:
        UPLiFT().load_state_dict(jafar_like)
    assert '\n' not in str(err.value)


def test_errors(tmp_path):
    with pytest.raises(ValueError, match='arch must be one of'):
        UPLiFT(arch='dinov2-b14')
    custom = copy.deepcopy(ARCHS['dinov2-s14']['arch'])
    with pytest.raises(ValueError, match='set in_channels and patch_size'):
        UPLiFT(arch=custom)
    custom['attender'] = 7
    with pytest.raises(ValueError, match='num_connected must be one of'):
        UPLiFT(arch=custom, in_channels=8, patch_size=16)
    with pytest.raises(FileNotFoundError, match='does not exist'):
        UPLiFT(checkpoint=str(tmp_path / 'missing.safetensors'))
    with pytest.raises(ValueError, match='built for 384'):
        UPLiFT()(torch.randn(1, 3, 32, 32), torch.randn(1, 16, 2, 2), (4, 4))
    with pytest.raises(ValueError, match='must have 17 channels'):
        LocalAttender(8)(torch.randn(1, 8, 5, 5), torch.randn(1, 3, 2, 2))
