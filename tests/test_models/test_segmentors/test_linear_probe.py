"""mmseg integration: the one-line neck in a stock EncoderDecoder, GuidedEncoderDecoder, the probe heads."""
import warnings

import pytest
import torch
from mmengine.config import ConfigDict
from mmengine.registry import DefaultScope
from mmengine.structures import PixelData

from mmseg.registry import MODELS as MMSEG_MODELS
from mmseg.structures import SegDataSample

from mmjafar.structures import GuidedFeatures

BACKBONE = dict(type='TimmViT', pretrained=False, random_init=True, model_kwargs=dict(depth=1))
SMALL_JAFAR = dict(type='JAFAR', v_dim=384, qk_dim=16, num_heads=2)


@pytest.fixture(autouse=True)
def mmseg_scope():
    with DefaultScope.overwrite_default_scope('mmseg'):
        yield


def samples(batch, size, num_classes=5):
    out = []
    for _ in range(batch):
        s = SegDataSample(metainfo=dict(img_shape=size, ori_shape=size, pad_shape=size, padding_size=[0, 0, 0, 0]))
        s.gt_sem_seg = PixelData(data=torch.randint(0, num_classes, (1, *size)))
        out.append(s)
    return out


def build_segmentor(seg_type='EncoderDecoder', neck=SMALL_JAFAR, backbone=BACKBONE, num_classes=5):
    cfg = ConfigDict(type=seg_type, data_preprocessor=dict(type='SegDataPreProcessor', mean=[123.675, 116.28, 103.53],
                                                           std=[58.395, 57.12, 57.375], bgr_to_rgb=True),
                     backbone=backbone, neck=neck,
                     decode_head=dict(type='LinearProbeHead', in_channels=384, num_classes=num_classes),
                     train_cfg=dict(), test_cfg=dict(mode='whole'))
    with warnings.catch_warnings():
        warnings.filterwarnings('ignore', message='.*RANDOM weights')
        model = MMSEG_MODELS.build(cfg)
    model.init_weights()
    return model


@pytest.mark.parametrize('neck_type', ['JAFAR', 'mmjafar.JAFAR'])
def test_one_line_neck_in_stock_encoder_decoder(neck_type):
    model = build_segmentor(neck=dict(SMALL_JAFAR, type=neck_type))
    assert type(model).__name__ == 'EncoderDecoder'
    image = torch.randn(2, 3, 42, 56)
    feats = model.extract_feat(image)
    assert isinstance(feats, GuidedFeatures) and feats[0].shape == (2, 384, 42, 56)  # upsampled to the input
    model.train()
    losses = model.loss(image, samples(2, (42, 56)))
    assert torch.isfinite(losses['decode.loss_ce'])
    losses['decode.loss_ce'].backward()
    assert model.decode_head.conv_seg.weight.grad is not None
    assert model.neck.image_encoder[0].weight.grad is not None  # the neck trains unless frozen
    assert not any(p.requires_grad for p in model.backbone.parameters())
    model.eval()
    with torch.no_grad():
        preds = model.predict(image, samples(2, (42, 56)))
    assert preds[0].pred_sem_seg.data.shape == (1, 42, 56)


def test_frozen_generic_neck_and_head_are_the_only_trained_parts():
    model = build_segmentor(neck=dict(type='FeatureUpsamplerNeck', upsampler=SMALL_JAFAR, frozen=True))
    model.train()
    trainable = sorted({n.split('.')[0] for n, p in model.named_parameters() if p.requires_grad})
    assert trainable == ['decode_head']
    assert not model.neck.upsampler.training and model.decode_head.training


def test_guided_encoder_decoder_feeds_the_image_to_third_party_backbones():
    backbone = dict(type='mmseg.VisionTransformer', img_size=(32, 32), patch_size=16, embed_dims=384, num_layers=1,
                    num_heads=6, out_indices=(0, ), final_norm=True)
    model = build_segmentor('GuidedEncoderDecoder', neck=dict(type='Bilinear', output_size=32), backbone=backbone)
    image = torch.randn(1, 3, 32, 32)
    feats = model.extract_feat(image)
    assert isinstance(feats, GuidedFeatures) and feats.image is image and feats[0].shape == (1, 384, 32, 32)
    guided = build_segmentor('GuidedEncoderDecoder', neck=SMALL_JAFAR, backbone=backbone)
    assert guided.extract_feat(image)[0].shape == (1, 384, 32, 32)
    stock = build_segmentor('EncoderDecoder', neck=SMALL_JAFAR, backbone=backbone)
    with pytest.raises(TypeError, match='GuidedEncoderDecoder'):
        stock.extract_feat(image)


def test_linear_probe_head_is_batchnorm_plus_1x1_conv():
    head = MMSEG_MODELS.build(dict(type='LinearProbeHead', in_channels=8, num_classes=3)).eval()
    x = torch.randn(2, 8, 5, 6)
    expected = head.conv_seg(head.bn(x))
    torch.testing.assert_close(head([x]), expected)
    assert sum(p.numel() for p in head.parameters()) == 8 * 2 + 8 * 3 + 3
    bare = MMSEG_MODELS.build(dict(type='LinearProbeHead', in_channels=8, num_classes=3, batch_norm=False))
    assert isinstance(bare.bn, torch.nn.Identity)


def test_linear_depth_head_loss_and_range():
    head = MMSEG_MODELS.build(dict(type='LinearDepthHead', in_channels=8, max_depth=10.0))
    x = torch.randn(2, 8, 6, 6)
    depth = head([x])
    assert depth.shape == (2, 1, 6, 6) and (depth > 0).all() and (depth < 10).all()
    batch = []
    for _ in range(2):
        s = SegDataSample()
        s.gt_depth_map = PixelData(data=torch.rand(1, 12, 12) * 5 + 0.5)
        batch.append(s)
    losses = head.loss([x], batch, train_cfg=dict())
    assert set(losses) == {'loss_silog'} and torch.isfinite(losses['loss_silog'])
