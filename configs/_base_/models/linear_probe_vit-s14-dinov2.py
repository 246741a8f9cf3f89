# Frozen DINOv2 ViT-S/14 -> upsampler neck (frozen) -> BatchNorm + 1x1 conv probe, evaluated at 448x448.
# Part of the probe protocol (../datasets/probe-448.py); the dataset configs set the head's class count, the
# configs under configs/linear_probe/ change `neck` (and the backbone for the other backbones).
data_preprocessor = dict(type='SegDataPreProcessor', mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
                         bgr_to_rgb=True, pad_val=0, seg_pad_val=255, size=(448, 448))
model = dict(
    type='EncoderDecoder',
    data_preprocessor=data_preprocessor,
    backbone=dict(type='TimmViT', model_name='vit_small_patch14_dinov2.lvd142m', pretrained=True, frozen=True),
    neck=dict(type='Bilinear'),  # features upsampled to the input size (448x448)
    decode_head=dict(type='LinearProbeHead', in_channels=384),  # num_classes: the dataset's
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
