# What the three BEV models share (design brief §2): frozen DINOv2 ViT-S/14 -> upsampler (Bilinear to stride 8,
# 28x60 at 224x480: the Bilinear row; the leaves of the other rows change `upsampler` and `target_stride`,
# None = Low-Res) -> neck to 128 channels -> [view transform, BEV encoder, heads: set by simplebev.py,
# pointbev.py, bevformer.py] -> segmentation + centerness + offset losses (BEVLoss).
model = dict(
    data_preprocessor=dict(type='BEVDataPreprocessor'),
    backbone=dict(type='TimmViT', model_name='vit_small_patch14_dinov2.lvd142m', pretrained=True, frozen=True),
    upsampler=dict(type='Bilinear'),
    target_stride=8,
    neck=dict(type='BEVImageNeck', in_channels=384, out_channels=128),
    loss=dict(type='BEVLoss', pos_weight=2.13, loss_weights=(10.0, 0.5, 0.5)))
