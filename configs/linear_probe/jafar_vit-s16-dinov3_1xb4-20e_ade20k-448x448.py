# Linear probe, DINOv3 ViT-S/16, ade20k at 448x448, batch 4, 20 epochs.
# JAFAR (frozen) upsampling the 28x28 features to 448x448.
_base_ = [
    '../_base_/models/linear_probe_vit-s14-dinov2.py',
    '../_base_/datasets/ade20k_probe-448.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/probe_20e.py',
]
# released weights of the upsampler (or --cfg-options model.neck.init_cfg.checkpoint=PATH)
upsampler_checkpoint = 'checkpoints/jafar/vit_small_patch16_dinov3.lvd1689m.pth'
model = dict(
    backbone=dict(model_name='vit_small_patch16_dinov3.lvd1689m'),
    neck=dict(type='JAFAR', v_dim=384, frozen=True,
              init_cfg=dict(type='Pretrained', checkpoint=upsampler_checkpoint)),
    decode_head=dict(in_channels=384, num_classes=150))
