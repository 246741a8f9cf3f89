# PointBeV, DINOv2 ViT-S/14, Low-Res (no upsampler: the ViT's own grid, stride 14, goes to the neck), tiny synthetic
# nuScenes (56x120 images, 50x50x4 grid) for CI smoke runs.
_base_ = ['./pointbev_dinov2-s14_bilinear_nus-vehicle_synthetic.py']
model = dict(upsampler=None, target_stride=14)  # target_stride: informative only
