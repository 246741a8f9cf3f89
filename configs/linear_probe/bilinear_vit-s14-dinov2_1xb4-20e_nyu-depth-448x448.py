# Depth linear probe (BatchNorm + 1x1 conv -> depth, SiLog loss), DINOv2 ViT-S/14, NYUv2 at 448x448, 20 epochs.
# Bilinear interpolation of the features to 448x448 (training-free baseline); the other NYUv2 configs
# inherit this one and change the neck. Reports δ1 ('d1') and RMSE with mmseg's DepthMetric.
_base_ = ['../_base_/datasets/nyu_depth_probe-448.py', '../_base_/default_runtime.py',
          '../_base_/schedules/probe_20e.py']
# lower RMSE is better; the segmentation visualiser does not draw depth maps
default_hooks = dict(checkpoint=dict(save_best='rmse', rule='less'), visualization=None)
