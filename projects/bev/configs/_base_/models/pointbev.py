# PointBeV for vehicle segmentation (design brief §2): frozen DINOv2 ViT-S/14 -> upsampler (set by the leaf,
# None = Low-Res) -> neck to 128 -> sparse lifting of the selected pillars (bilinear gather over pillar x height x
# camera, camera mean, Fourier coordinate embedding, height MLP 8*128 -> 128 x4) -> sparse ResNet UNet (masked-dense
# emulation of spconv) -> submanifold heads. Training: coarse pass on 2 500 random cells + fine pass on the top-100
# coarse cells dilated 9x9, capped/filled to 2 500; validation: one dense pass. The leaf sets `upsampler`,
# `target_stride` and `grid` (= the dataset's grid, {{_base_.grid}}); the height MLP's input is Z * 128.
bev_channels = 128
model = dict(
    type='PointBeV',
    data_preprocessor=dict(type='BEVDataPreprocessor'),
    backbone=dict(type='TimmViT', model_name='vit_small_patch14_dinov2.lvd142m', pretrained=True, frozen=True),
    neck=dict(type='BEVImageNeck', in_channels=384, out_channels=bev_channels),
    view_transform=dict(type='PointBeVLifting', in_channels=bev_channels, out_channels=bev_channels,
                        coord_embed=dict(num_freqs=8, hidden_channels=256, num_hidden=2), coord_margin=1.2,
                        height_layers=4),
    bev_encoder=dict(type='SparseResNetUNet', in_channels=bev_channels, base_channels=64, blocks_per_level=2),
    head=dict(type='SparseBEVHead', in_channels=bev_channels),
    loss=dict(type='BEVLoss', pos_weight=2.13, loss_weights=(10.0, 0.5, 0.5)),
    coarse_cells=2500, fine_cells=2500, fine_anchors=100, fine_kernel=9, fine_pass=True)
