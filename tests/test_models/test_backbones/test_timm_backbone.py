"""TimmBackbone on every timm family it serves (random weights, shallow models, small images): DINOv3 ViTs (Eva),
RADIO (NaFlexViT and ViT), SigLIP 2, CLIP, ConvNeXt DINOv3; maps, strides, normalisation, weights, JAFAR on top."""
import warnings

import pytest
import torch
from mmengine.model import BaseModule

from mmjafar.models.backbones import TimmBackbone, TimmViT
from mmjafar.models.upsamplers import JAFAR, Bilinear
from mmjafar.registry import MODELS
from mmjafar.structures import GuidedFeatures

# (timm name, kwargs that shrink it, timm class, channels, stride, renormalised)
TOKEN_MODELS = [
    ('vit_small_patch16_dinov3.lvd1689m', dict(depth=2), 'Eva', 384, 16, False),
    ('vit_small_plus_patch16_dinov3.lvd1689m', dict(depth=2), 'Eva', 384, 16, False),
    ('vit_base_patch16_dinov3.lvd1689m', dict(depth=2), 'Eva', 768, 16, False),
    ('naflexvit_base_patch16_radio_v3.c_radio', dict(depth=2), 'NaFlexVit', 768, 16, True),
    ('vit_base_patch16_radio_v3.c_radio', dict(depth=2), 'VisionTransformer', 768, 16, True),
    ('vit_base_patch16_siglip_224.v2_webli', dict(depth=2), 'VisionTransformer', 768, 16, True),
    ('vit_base_patch16_clip_224.openai', dict(depth=2), 'VisionTransformer', 768, 16, True),
    ('vit_small_patch14_reg4_dinov2.lvd142m', dict(depth=2), 'VisionTransformer', 384, 14, False),
]
CONVNEXT = 'convnext_tiny.dinov3_lvd1689m'
TINY_CONVNEXT = dict(depths=(1, 1, 1, 1))
IMAGENET = (torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))


def build(name, model_kwargs, **kwargs) -> TimmBackbone:
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # the RANDOM-weights warning is tested in test_timm_vit.py
        return TimmBackbone(name, pretrained=False, random_init=True, model_kwargs=model_kwargs, **kwargs)


@pytest.mark.parametrize('name,model_kwargs,family,channels,stride,renorm', TOKEN_MODELS,
                         ids=[m[0] for m in TOKEN_MODELS])
def test_token_models(name, model_kwargs, family, channels, stride, renorm):
    torch.manual_seed(0)
    net = build(name, model_kwargs, out_indices=(-1, 0))
    assert type(net.model).__name__ == family and net.is_token_model
    assert (net.embed_dim, net.patch_size, net.out_channels, net.out_strides) == (channels, stride, [channels] * 2,
                                                                                  [stride] * 2)
    assert net.renormalize == renorm
    for size in ((4, 6), (5, 3)):  # any multiple of the patch, either orientation
        raw = torch.rand(1, 3, size[0] * stride, size[1] * stride)
        image = (raw - IMAGENET[0]) / IMAGENET[1]
        feats = net(image)
        assert isinstance(feats, GuidedFeatures) and feats.image is image
        assert [tuple(f.shape) for f in feats] == [(1, channels) + size] * 2
        # exactly timm's own NCHW intermediates, on the input normalised as the model was pretrained
        mean = torch.tensor(net.model.pretrained_cfg['mean']).view(1, 3, 1, 1)
        std = torch.tensor(net.model.pretrained_cfg['std']).view(1, 3, 1, 1)
        with torch.no_grad():
            ref = net.model.forward_intermediates((raw - mean) / std, indices=[0, net.num_blocks - 1], norm=True,
                                                  intermediates_only=True)
        torch.testing.assert_close(feats[0], ref[1], atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(feats[1], ref[0], atol=1e-4, rtol=1e-4)
    assert not any(p.requires_grad for p in net.parameters()) and not net.training


def test_siglip_and_radio_normalisation_is_not_imagenet():
    siglip = build('vit_base_patch16_siglip_224.v2_webli', dict(depth=1))
    radio = build('naflexvit_base_patch16_radio_v3.c_radio', dict(depth=1))
    torch.testing.assert_close(siglip._renorm_scale.flatten(), IMAGENET[1].flatten() / 0.5)
    torch.testing.assert_close(siglip._renorm_shift.flatten(), (IMAGENET[0].flatten() - 0.5) / 0.5)
    clip_mean = torch.tensor(radio.model.pretrained_cfg['mean'])
    assert not torch.allclose(clip_mean, IMAGENET[0].flatten()) and radio.renormalize


def test_convnext_stages_and_jafar_neck():
    torch.manual_seed(0)
    net = build(CONVNEXT, TINY_CONVNEXT, out_indices=(0, 1, 2, 3))
    assert not net.is_token_model and net.num_blocks == 4
    assert net.out_channels == [96, 192, 384, 768] and net.out_strides == [4, 8, 16, 32]
    assert (net.embed_dim, net.patch_size) == (768, 32)
    image = torch.randn(1, 3, 64, 96)
    feats = net(image)
    assert [tuple(f.shape[1:]) for f in feats] == [(96, 16, 24), (192, 8, 12), (384, 4, 6), (768, 2, 3)]
    with torch.no_grad():
        ref = net.model.forward_intermediates(image, indices=[0, 1, 2, 3], norm=True, intermediates_only=True)
    for ours, theirs in zip(feats, ref):
        torch.testing.assert_close(ours, theirs)
    # a pyramid decoder's resize to stride 4, one upsampler per level built from out_channels
    ups = [JAFAR(v_dim=c).eval() for c in net.out_channels]
    with torch.no_grad():
        outs = [up(feats.image, f, (16, 24)) for up, f in zip(ups, feats)]
    assert [tuple(o.shape[1:]) for o in outs] == [(c, 16, 24) for c in net.out_channels]
    assert all(torch.isfinite(o).all() for o in outs)
    assert tuple(net(torch.randn(1, 3, 72, 40))[0].shape[-2:]) == (18, 10)  # sizes not multiple of 32 work too
    with pytest.raises(ValueError, match='patch_stride applies to token models'):
        build(CONVNEXT, TINY_CONVNEXT, patch_stride=2)


def test_dinov3_features_feed_jafar_as_neck():
    torch.manual_seed(0)
    net = build('vit_small_plus_patch16_dinov3.lvd1689m', dict(depth=1))
    neck = MODELS.build(dict(type='JAFAR', v_dim=net.embed_dim)).eval()
    with torch.no_grad():
        out = neck(net(torch.randn(2, 3, 64, 80)))
    assert isinstance(out, GuidedFeatures) and tuple(out[0].shape) == (2, 384, 64, 80)
    bilinear = Bilinear()(net(torch.randn(1, 3, 48, 48)))
    assert tuple(bilinear[0].shape) == (1, 384, 48, 48)


def test_strided_baseline_on_dinov3():
    net = build('vit_small_patch16_dinov3.lvd1689m', dict(depth=1), patch_stride=8)
    feats = net(torch.randn(1, 3, 64, 96))
    assert tuple(feats[0].shape[-2:]) == (7, 11) == net.feature_grid(64, 96) and net.out_strides == [8]


@pytest.mark.parametrize('name,model_kwargs', [('vit_small_patch16_dinov3.lvd1689m', dict(depth=1)),
                                               ('naflexvit_base_patch16_radio_v3.c_radio', dict(depth=1)),
                                               (CONVNEXT, TINY_CONVNEXT)])
def test_weights_load_and_survive_init_weights(tmp_path, name, model_kwargs):
    torch.manual_seed(0)
    reference = {k: v.clone() for k, v in build(name, model_kwargs).model.state_dict().items()}
    path = tmp_path / 'weights.pth'
    torch.save(reference, path)

    class Segmentor(BaseModule):  # what mmengine's Runner calls init_weights() on

        def __init__(self):
            super().__init__()
            self.backbone = MODELS.build(dict(type='TimmBackbone', model_name=name, checkpoint=str(path),
                                              model_kwargs=model_kwargs))

    torch.manual_seed(123)
    model = Segmentor()
    model.init_weights()
    for key, value in model.backbone.model.state_dict().items():
        assert torch.equal(value, reference[key]), f'{key} differs from the file after init_weights()'
    wrong = tmp_path / 'wrong.pth'
    torch.save({'conv.weight': torch.zeros(1)}, wrong)
    with pytest.raises(ValueError, match='does not fit this model'):
        TimmBackbone(name, checkpoint=str(wrong), model_kwargs=model_kwargs)


def test_timmvit_is_the_same_adapter():
    assert issubclass(TimmViT, TimmBackbone)
    assert MODELS.get('TimmViT') is TimmViT and MODELS.get('TimmBackbone') is TimmBackbone
    with pytest.raises(ValueError, match='out of range for 2 blocks'):
        build('vit_small_patch16_dinov3.lvd1689m', dict(depth=2), out_indices=(2, ))


def test_convnext_pyramid_through_align_neck_with_uplift():
    """ConvNeXt DINOv3 levels (channels and strides from the backbone) brought to stride 4 by UPLiFT."""
    torch.manual_seed(0)
    net = build(CONVNEXT, TINY_CONVNEXT, out_indices=(0, 1, 2, 3))
    neck = MODELS.build(dict(type='GuidedAlignNeck', in_channels=net.out_channels, in_strides=net.out_strides,
                             upsampler=dict(type='UPLiFT', arch='dinov3-splus16'))).eval()
    with torch.no_grad():
        outs = neck(net(torch.randn(1, 3, 64, 64)))
    assert [tuple(o.shape[1:]) for o in outs] == [(c, 16, 16) for c in net.out_channels]
    assert all(torch.isfinite(o).all() for o in outs)
