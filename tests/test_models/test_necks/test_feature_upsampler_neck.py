"""FeatureUpsamplerNeck and the upsampler-as-neck contract."""
import pytest
import torch

from mmjafar.models.necks import FeatureUpsamplerNeck
from mmjafar.registry import MODELS
from mmjafar.structures import GuidedFeatures

JAFAR_CFG = dict(type='JAFAR', v_dim=16, qk_dim=16, num_heads=2)


def guided(batch=2, channels=16, grid=(4, 5), image=(28, 35), n=2):
    torch.manual_seed(0)
    maps = [torch.randn(batch, channels, *grid) for _ in range(n)]
    return GuidedFeatures(maps, image=torch.randn(batch, 3, *image))


def test_default_size_is_the_image_and_matches_the_upsampler_call():
    neck = MODELS.build(dict(type='FeatureUpsamplerNeck', upsampler=JAFAR_CFG)).eval()
    inputs = guided()
    out = neck(inputs)
    assert isinstance(out, GuidedFeatures) and out.image is inputs.image and len(out) == 1
    assert out[0].shape == (2, 16, 28, 35)
    torch.testing.assert_close(out[0], neck.upsampler(inputs.image, inputs[-1], (28, 35)))


def test_size_options_and_indices():
    inputs = guided()
    fixed = FeatureUpsamplerNeck(JAFAR_CFG, in_index=(0, 1), output_size=12)
    assert [tuple(x.shape) for x in fixed(inputs)] == [(2, 16, 12, 12)] * 2
    scaled = FeatureUpsamplerNeck(JAFAR_CFG, in_index=0, scale_factor=2)
    assert scaled(inputs)[0].shape[-2:] == (8, 10)
    kept = FeatureUpsamplerNeck(JAFAR_CFG, in_index=0, keep_inputs=True, output_size=(6, 7))
    out = kept(inputs)
    assert len(out) == 2 and out[0].shape[-2:] == (6, 7) and out[1] is inputs[1]
    with pytest.raises(IndexError, match='out of range'):
        FeatureUpsamplerNeck(JAFAR_CFG, in_index=3)(inputs)


def test_channel_projection_and_frozen_upsampler():
    neck = FeatureUpsamplerNeck(JAFAR_CFG, out_channels=8, frozen=True, output_size=8)
    neck.train()
    assert neck.training and not neck.upsampler.training
    assert not any(p.requires_grad for p in neck.upsampler.parameters())
    out = neck(guided())
    assert out[0].shape == (2, 8, 8, 8)
    out[0].sum().backward()
    assert neck.projections[0].weight.grad is not None
    neck.init_weights()
    assert not any(p.requires_grad for p in neck.upsampler.parameters())


def test_trainable_upsampler_gets_gradients():
    neck = FeatureUpsamplerNeck(JAFAR_CFG, output_size=8).train()
    neck(guided())[0].square().mean().backward()
    assert neck.upsampler.image_encoder[0].weight.grad is not None


def test_upsampler_is_a_neck_by_itself():
    up = MODELS.build(dict(JAFAR_CFG, output_size=10)).eval()
    inputs = guided()
    out = up(inputs)
    assert isinstance(out, GuidedFeatures) and [tuple(x.shape) for x in out] == [(2, 16, 10, 10)] * 2


def test_missing_image_and_bad_config_are_explained():
    with pytest.raises(TypeError, match='GuidedEncoderDecoder'):
        FeatureUpsamplerNeck(JAFAR_CFG)((torch.randn(1, 16, 4, 4), ))
    with pytest.raises(ValueError, match='channels'):
        FeatureUpsamplerNeck(JAFAR_CFG)(guided(channels=8))
    with pytest.raises(TypeError, match='not a BaseUpsampler'):
        FeatureUpsamplerNeck(dict(type='FeatureUpsamplerNeck', upsampler=JAFAR_CFG))
    with pytest.raises(TypeError):  # config typos fail: no **kwargs
        MODELS.build(dict(type='FeatureUpsamplerNeck', upsampler=JAFAR_CFG, out_chanels=3))
