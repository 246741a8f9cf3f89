# Linear probe, DINOv2 ViT-S/14, ade20k at 448x448, batch 4, 20 epochs.
# NAF (frozen) upsampling the features to 448x448.
_base_ = [
    '../_base_/models/linear_probe_vit-s14-dinov2.py',
    '../_base_/datasets/ade20k_probe-448.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/probe_20e.py',
]
# released weights of the upsampler (or --cfg-options model.neck.init_cfg.checkpoint=PATH)
upsampler_checkpoint = 'checkpoints/naf/naf_release.pth'
model = dict(
    neck=dict(type='NAF', frozen=True, init_cfg=dict(type='Pretrained', checkpoint=upsampler_checkpoint)),
    decode_head=dict(num_classes=150))
