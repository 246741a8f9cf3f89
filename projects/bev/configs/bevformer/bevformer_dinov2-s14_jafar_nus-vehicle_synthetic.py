# BEVFormer (static), DINOv2 ViT-S/14, tiny synthetic nuScenes (56x120 images, 50x50x4 grid) for CI smoke runs: the
# Bilinear config with JAFAR (the released one for DINOv2 ViT-S/14, frozen, straight to stride 8 with the image as
# guidance), without its checkpoint (random weights).
_base_ = ['./bevformer_dinov2-s14_bilinear_nus-vehicle_synthetic.py']
model = dict(upsampler=dict(type='JAFAR', v_dim=384, frozen=True))
