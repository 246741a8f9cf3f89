# Linear probe, DINOv2 ViT-S/14, ade20k at 448x448, batch 4, 20 epochs (the Bilinear one's set-up):
# "Large image" baseline: the input upscaled x2 (64x64 tokens), then bilinear to 448x448.
_base_ = ['./bilinear_vit-s14-dinov2_1xb4-20e_ade20k-448x448.py']
model = dict(backbone=dict(image_scale=2.0))
