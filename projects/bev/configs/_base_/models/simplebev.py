# SimpleBEV for vehicle segmentation (design brief §2): frozen DINOv2 ViT-S/14 -> upsampler (set by the leaf from
# _base_/upsamplers/*.py; None = Low-Res) -> neck (2 x [conv3x3 + IN + ReLU], 1x1 -> 128) -> dense lifting of the
# 8 x 200 x 200 voxels (camera mean) -> 1024 -> 128 conv3x3 + IN + GELU -> ResNet-18 UNet -> seg / centerness /
# offset heads. The leaf sets `upsampler`, `target_stride` and `grid` (= the dataset's grid, {{_base_.grid}}).
bev_channels = 128
model = dict(
    type='SimpleBEV',
    data_preprocessor=dict(type='BEVDataPreprocessor'),
    backbone=dict(type='TimmViT', model_name='vit_small_patch14_dinov2.lvd142m', pretrained=True, frozen=True),
    neck=dict(type='BEVImageNeck', in_channels=384, out_channels=bev_channels, num_convs=2),
    view_transform=dict(type='DenseLifting'),
    bev_channels=bev_channels,
    bev_encoder=dict(type='ResNetUNet', in_channels=bev_channels),
    head=dict(type='BEVHead', in_channels=bev_channels),
    loss=dict(type='BEVLoss', pos_weight=2.13, loss_weights=(10.0, 0.5, 0.5)))
