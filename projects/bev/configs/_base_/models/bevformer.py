# Static BEVFormer for vehicle segmentation (design brief §2): frozen DINOv2 ViT-S/14 -> upsampler
# (bev_dinov2-s14.py: Bilinear to stride 8, changed by the leaves; None = Low-Res) -> neck to 128 -> 6 post-norm
# encoder layers (deformable BEV self-attention, spatial cross-attention over the 8 height anchors, FFN
# 128-1028-128) on 200x200 learned queries -> dense heads straight on the queries (PointBeV's variant,
# bev_encoder=None by default; model.bev_encoder=dict(type='ResNetUNet', in_channels=128) puts SimpleBEV's
# ResNet-18 UNet in between). The leaf sets `grid` to the dataset's grid (model grid == dataset grid); the encoder
# takes the model's grid (query map R x C, height anchors z_centers).
_base_ = ['./bev_dinov2-s14.py']
embed_dims = 128
model = dict(
    type='BEVFormerSeg',
    view_transform=dict(type='BEVFormerEncoder', embed_dims=embed_dims, num_layers=6, num_heads=4,
                        num_points_self=8, num_points_cross=8, ffn_dims=1028, dropout=0.1, query_init_std=0.1),
    head=dict(type='BEVHead', in_channels=embed_dims))
