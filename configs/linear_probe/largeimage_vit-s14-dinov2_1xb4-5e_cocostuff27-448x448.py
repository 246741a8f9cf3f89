# Linear probe, DINOv2 ViT-S/14, cocostuff27 at 448x448, batch 4, 5 epochs.
# "Large image" baseline: the input upscaled x2 (64x64 tokens), then bilinear to 448x448.
_base_ = [
    '../_base_/models/linear_probe_vit-s14-dinov2.py',
    '../_base_/datasets/cocostuff27_probe-448.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/probe_5e.py',
]
model = dict(
    backbone=dict(image_scale=2.0),
    neck=dict(type='Bilinear'),
    decode_head=dict(num_classes=27))
