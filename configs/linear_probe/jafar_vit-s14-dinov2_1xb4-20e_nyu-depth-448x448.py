# Depth linear probe (BatchNorm + 1x1 conv -> depth, SiLog loss), DINOv2 ViT-S/14, NYUv2 at 448x448, 20 epochs.
# JAFAR (frozen) upsampling the features to 448x448.
# Reports δ1 ('d1') and RMSE with mmseg's DepthMetric.
_base_ = [
    '../_base_/models/linear_probe_vit-s14-dinov2.py',
    '../_base_/datasets/nyu_depth_probe-448.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/probe_20e.py',
]
# released weights of the upsampler (or --cfg-options model.neck.init_cfg.checkpoint=PATH)
upsampler_checkpoint = 'checkpoints/jafar/vit_small_patch14_dinov2.lvd142m.pth'
model = dict(
    type='DepthEstimator',
    neck=dict(type='JAFAR', v_dim=384, frozen=True,
              init_cfg=dict(type='Pretrained', checkpoint=upsampler_checkpoint)),
    decode_head=dict(_delete_=True, type='LinearDepthHead', in_channels=384, max_depth=10.0))
# lower RMSE is better; the segmentation visualiser does not draw depth maps
default_hooks = dict(checkpoint=dict(save_best='rmse', rule='less'), visualization=None)
