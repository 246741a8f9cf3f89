# Linear probe, DINOv2 ViT-S/14, cocostuff27 at 448x448, batch 4, 5 epochs (the Bilinear one's set-up):
# "Strided" baseline: patch embedding with stride 7 (63x63 tokens), then bilinear to 448x448.
_base_ = ['./bilinear_vit-s14-dinov2_1xb4-5e_cocostuff27-448x448.py']
model = dict(backbone=dict(patch_stride=7))
