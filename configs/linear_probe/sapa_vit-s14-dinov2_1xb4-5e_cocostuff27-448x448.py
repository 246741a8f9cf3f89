# Linear probe, DINOv2 ViT-S/14, cocostuff27 at 448x448, batch 4, 5 epochs (the Bilinear one's set-up):
# SAPA, 4 x2 stages then bilinear to 448x448, trained jointly with the probe (task-dependent baseline).
_base_ = ['./bilinear_vit-s14-dinov2_1xb4-5e_cocostuff27-448x448.py']
model = dict(neck=dict(type='SAPA', channels=384))
