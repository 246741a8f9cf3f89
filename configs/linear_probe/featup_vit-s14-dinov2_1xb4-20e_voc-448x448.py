# Linear probe, DINOv2 ViT-S/14, voc at 448x448, batch 4, 20 epochs.
# FeatUp JBU stack (frozen) upsampling the features, then bilinear to 448x448.
_base_ = [
    '../_base_/models/linear_probe_vit-s14-dinov2.py',
    '../_base_/datasets/voc_probe-448.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/probe_20e.py',
]
# released weights of the upsampler (or --cfg-options model.neck.init_cfg.checkpoint=PATH)
upsampler_checkpoint = 'checkpoints/featup/dinov2_jbu_stack_cocostuff.ckpt'
model = dict(
    neck=dict(type='JBUStack', feat_dim=384, frozen=True,
              init_cfg=dict(type='Pretrained', checkpoint=upsampler_checkpoint)),
    decode_head=dict(num_classes=21))
