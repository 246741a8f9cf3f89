# PointBeV for vehicle segmentation (design brief §2): frozen DINOv2 ViT-S/14 -> upsampler (bev_dinov2-s14.py:
# Bilinear to stride 8, changed by the leaves; None = Low-Res) -> neck to 128 -> sparse lifting of the selected
# pillars (bilinear gather over pillar x height x camera, camera mean, Fourier coordinate embedding, height MLP
# 8*128 -> 128 x4) -> sparse ResNet UNet (masked-dense emulation of spconv) -> submanifold heads. Training: coarse
# pass on 2 500 random cells + fine pass on the top-100 coarse cells dilated 9x9, capped/filled to 2 500;
# validation: one dense pass. The leaf sets `grid` (= the dataset's grid, {{_base_.grid}}); the height MLP's input
# is Z * 128.
_base_ = ['./bev_dinov2-s14.py']
bev_channels = 128
model = dict(
    type='PointBeV',
    view_transform=dict(type='PointBeVLifting', in_channels=bev_channels, out_channels=bev_channels,
                        coord_embed=dict(num_freqs=8, hidden_channels=256, num_hidden=2), coord_margin=1.2,
                        height_layers=4),
    bev_encoder=dict(type='SparseResNetUNet', in_channels=bev_channels, base_channels=64, blocks_per_level=2),
    head=dict(type='SparseBEVHead', in_channels=bev_channels),
    coarse_cells=2500, fine_cells=2500, fine_anchors=100, fine_kernel=9, fine_pass=True)
