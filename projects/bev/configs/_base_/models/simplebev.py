# SimpleBEV for vehicle segmentation (design brief §2): frozen DINOv2 ViT-S/14 -> upsampler (bev_dinov2-s14.py:
# Bilinear to stride 8, changed by the leaves; None = Low-Res) -> neck (2 x [conv3x3 + IN + ReLU], 1x1 -> 128) ->
# dense lifting of the 8 x 200 x 200 voxels (camera mean) -> 1024 -> 128 conv3x3 + IN + GELU -> ResNet-18 UNet ->
# seg / centerness / offset heads. The leaf sets `grid` (= the dataset's grid, {{_base_.grid}}).
_base_ = ['./bev_dinov2-s14.py']
bev_channels = 128
model = dict(
    type='SimpleBEV',
    neck=dict(num_convs=2),
    view_transform=dict(type='DenseLifting'),
    bev_channels=bev_channels,
    bev_encoder=dict(type='ResNetUNet', in_channels=bev_channels),
    head=dict(type='BEVHead', in_channels=bev_channels))
