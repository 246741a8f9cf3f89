# Static BEVFormer for vehicle segmentation (design brief §2): frozen DINOv2 ViT-S/14 -> upsampler (set by the leaf,
# None = Low-Res) -> neck to 128 -> 6 post-norm encoder layers (deformable BEV self-attention, spatial cross-attention
# over the 8 height anchors, FFN 128-1028-128) on 200x200 learned queries -> dense heads straight on the queries
# (PointBeV's variant, bev_encoder=None by default; model.bev_encoder=dict(type='ResNetUNet', in_channels=128) puts
# SimpleBEV's ResNet-18 UNet in between). The leaf sets `grid` to the dataset's grid (model grid == dataset grid); the
# encoder takes the model's grid (query map R x C, height anchors z_centers).
embed_dims = 128
model = dict(
    type='BEVFormerSeg',
    data_preprocessor=dict(type='BEVDataPreprocessor'),
    backbone=dict(type='TimmViT', model_name='vit_small_patch14_dinov2.lvd142m', pretrained=True, frozen=True),
    neck=dict(type='BEVImageNeck', in_channels=384, out_channels=embed_dims),
    view_transform=dict(type='BEVFormerEncoder', embed_dims=embed_dims, num_layers=6, num_heads=4,
                        num_points_self=8, num_points_cross=8, ffn_dims=1028, dropout=0.1, query_init_std=0.1),
    head=dict(type='BEVHead', in_channels=embed_dims),
    loss=dict(type='BEVLoss', pos_weight=2.13, loss_weights=(10.0, 0.5, 0.5)))
