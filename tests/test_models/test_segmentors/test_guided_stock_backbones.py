"""GuidedEncoderDecoder with mmseg's own backbones, necks and decode heads: the image reaches the neck in one place."""
import pytest
import torch
from mmengine.config import ConfigDict
from mmengine.registry import DefaultScope
from mmseg.registry import MODELS

import mmjafar  # noqa: F401
from mmjafar.structures import GuidedFeatures
from .test_linear_probe import samples

PRE = dict(type='SegDataPreProcessor', mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], bgr_to_rgb=True)
JAFAR = dict(type='JAFAR', qk_dim=16, num_heads=2)
SEGFORMER_HEAD = dict(type='SegformerHead', channels=32, num_classes=4, in_index=[0, 1, 2, 3], dropout_ratio=0.0)
# small mmseg backbones of each family, with the channels they return
BACKBONES = {
    'MiT': (dict(type='MixVisionTransformer', in_channels=3, embed_dims=16, num_stages=4, num_layers=[1, 1, 1, 1],
                 num_heads=[1, 2, 5, 8], patch_sizes=[7, 3, 3, 3], sr_ratios=[8, 4, 2, 1]), [16, 32, 80, 128]),
    'Swin': (dict(type='SwinTransformer', embed_dims=16, depths=[1, 1, 1, 1], num_heads=[1, 1, 2, 2],
                  window_size=4), [16, 32, 64, 128]),
    'ResNet': (dict(type='ResNetV1c', depth=18, base_channels=8, norm_cfg=dict(type='BN')), [8, 16, 32, 64]),
}


@pytest.fixture(autouse=True)
def mmseg_scope():
    with DefaultScope.overwrite_default_scope('mmseg'):
        yield


def train_and_predict(model, size=(64, 64)):
    model.test_cfg = ConfigDict(mode='whole')
    torch.manual_seed(0)
    inputs = torch.randn(2, 3, *size)
    losses = model.loss(inputs, samples(2, size, num_classes=4))
    loss = sum(v for k, v in losses.items() if 'loss' in k)
    assert torch.isfinite(loss)
    loss.backward()
    model.eval()
    with torch.no_grad():
        preds = model.predict(inputs, samples(2, size, num_classes=4))
    assert preds[0].pred_sem_seg.data.shape == (1, *size)
    return model


@pytest.mark.parametrize('family', sorted(BACKBONES))
@pytest.mark.parametrize('upsampler', ['JAFAR', 'CARAFE'])
def test_hierarchical_backbones_with_align_neck(family, upsampler):
    backbone, channels = BACKBONES[family]
    up = JAFAR if upsampler == 'JAFAR' else dict(type='CARAFE', impl='torch')
    model = MODELS.build(dict(type='GuidedEncoderDecoder', data_preprocessor=PRE, backbone=backbone,
                              neck=dict(type='GuidedAlignNeck', in_channels=channels, upsampler=up),
                              decode_head=dict(SEGFORMER_HEAD, in_channels=channels)))
    seen = []
    model.neck.register_forward_hook(lambda m, args, out: seen.append((args[0].image, [x.shape for x in out])))
    train_and_predict(model)
    image, shapes = seen[-1]
    assert image is not None and image.shape == (2, 3, 64, 64)
    assert len({s[-2:] for s in shapes}) == 1  # every level at the finest grid: the head's resizes are identities
    grads = [p.grad for p in model.neck.parameters() if p.requires_grad]
    assert grads and all(g is not None for g in grads)  # the neck trains with the model


def test_vit_upernet_with_multilevel_neck():
    model = MODELS.build(dict(
        type='GuidedEncoderDecoder', data_preprocessor=PRE,
        backbone=dict(type='VisionTransformer', img_size=(64, 64), patch_size=16, embed_dims=32, num_layers=4,
                      num_heads=2, out_indices=(0, 1, 2, 3)),
        neck=dict(type='GuidedMultiLevelNeck', in_channels=[32] * 4, out_channels=32, scales=[4, 2, 1, 0.5],
                  upsampler=JAFAR, upsample_inputs=True),
        decode_head=dict(type='UPerHead', in_channels=[32] * 4, in_index=[0, 1, 2, 3], pool_scales=(1, 2),
                         channels=16, num_classes=4),
        auxiliary_head=dict(type='FCNHead', in_channels=32, in_index=3, channels=8, num_convs=1, num_classes=4,
                            concat_input=False)))
    train_and_predict(model)


def test_neck_chain_fpn_then_align():
    backbone, channels = BACKBONES['ResNet']
    model = MODELS.build(dict(
        type='GuidedEncoderDecoder', data_preprocessor=PRE, backbone=backbone,
        neck=[dict(type='FPN', in_channels=channels, out_channels=16, num_outs=4),
              dict(type='GuidedAlignNeck', in_channels=[16] * 4, upsampler=JAFAR)],
        decode_head=dict(type='FPNHead', in_channels=[16] * 4, in_index=[0, 1, 2, 3], feature_strides=[4, 4, 4, 4],
                         channels=8, num_classes=4)))
    train_and_predict(model)
    with torch.no_grad():
        feats = model.extract_feat(torch.randn(1, 3, 64, 64))
    assert isinstance(feats, GuidedFeatures) and [tuple(f.shape) for f in feats] == [(1, 16, 16, 16)] * 4


def test_timm_vit_backbone_still_works():
    model = MODELS.build(dict(
        type='GuidedEncoderDecoder', data_preprocessor=PRE,
        backbone=dict(type='TimmViT', pretrained=False, random_init=True, model_kwargs=dict(depth=1)),
        neck=dict(type='GuidedMultiLevelNeck', in_channels=[384], out_channels=16, scales=[2, 1],
                  upsampler=dict(JAFAR), upsample_inputs=True),
        decode_head=dict(type='SegformerHead', channels=8, num_classes=4, in_index=[0, 1], in_channels=[16, 16])))
    train_and_predict(model, size=(56, 56))


def test_guided_neck_in_a_stock_encoder_decoder_says_what_to_change():
    backbone, channels = BACKBONES['ResNet']
    model = MODELS.build(dict(type='EncoderDecoder', data_preprocessor=PRE, backbone=backbone,
                              neck=dict(type='GuidedAlignNeck', in_channels=channels, upsampler=JAFAR),
                              decode_head=dict(SEGFORMER_HEAD, in_channels=channels)))
    with pytest.raises(ValueError, match="type='GuidedEncoderDecoder'"):
        model.extract_feat(torch.randn(1, 3, 64, 64))
