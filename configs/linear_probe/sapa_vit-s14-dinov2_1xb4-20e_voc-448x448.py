# Linear probe, DINOv2 ViT-S/14, voc at 448x448, batch 4, 20 epochs.
# SAPA, 4 x2 stages then bilinear to 448x448, trained jointly with the probe (task-dependent baseline).
_base_ = [
    '../_base_/models/linear_probe_vit-s14-dinov2.py',
    '../_base_/datasets/voc_probe-448.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/probe_20e.py',
]
model = dict(
    neck=dict(type='SAPA', channels=384),
    decode_head=dict(num_classes=21))
