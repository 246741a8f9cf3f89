# SimpleBEV, DINOv2 ViT-S/14, tiny synthetic nuScenes (56x120 images, 50x50x4 grid) for CI smoke runs: the Bilinear
# config with FeatUp JBU (the released stack for DINOv2 ViT-S/14, frozen, 2 of its x2 stages, then resized to stride
# 8), without its checkpoint (random weights).
_base_ = ['./simplebev_dinov2-s14_bilinear_nus-vehicle_synthetic.py']
model = dict(upsampler=dict(type='JBUStack', feat_dim=384, num_steps=2, frozen=True))
