# Linear probe, DINOv2 ViT-S/14, cityscapes27 at 448x448, batch 4, 20 epochs.
# JAFAR (frozen) upsampling the features to 448x448.
_base_ = [
    '../_base_/models/linear_probe_vit-s14-dinov2.py',
    '../_base_/datasets/cityscapes27_probe-448.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/probe_20e.py',
]
# released weights of the upsampler (or --cfg-options model.neck.init_cfg.checkpoint=PATH)
upsampler_checkpoint = 'checkpoints/jafar/vit_small_patch14_dinov2.lvd142m.pth'
model = dict(
    neck=dict(type='JAFAR', v_dim=384, frozen=True,
              init_cfg=dict(type='Pretrained', checkpoint=upsampler_checkpoint)),
    decode_head=dict(num_classes=27))
