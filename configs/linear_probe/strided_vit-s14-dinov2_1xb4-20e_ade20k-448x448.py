# Linear probe, DINOv2 ViT-S/14, ade20k at 448x448, batch 4, 20 epochs (the Bilinear one's set-up):
# "Strided" baseline: patch embedding with stride 7 (63x63 tokens), then bilinear to 448x448.
_base_ = ['./bilinear_vit-s14-dinov2_1xb4-20e_ade20k-448x448.py']
model = dict(backbone=dict(patch_stride=7))
