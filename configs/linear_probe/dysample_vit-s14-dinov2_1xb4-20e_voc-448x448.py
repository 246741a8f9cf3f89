# Linear probe, DINOv2 ViT-S/14, voc at 448x448, batch 4, 20 epochs (the Bilinear one's set-up):
# DySample, 4 x2 stages then bilinear to 448x448, trained jointly with the probe (task-dependent baseline).
_base_ = ['./bilinear_vit-s14-dinov2_1xb4-20e_voc-448x448.py']
model = dict(neck=dict(type='DySample', channels=384))
