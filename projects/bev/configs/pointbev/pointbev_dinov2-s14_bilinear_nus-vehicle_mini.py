# PointBeV, DINOv2 ViT-S/14, bilinear upsampling to stride 8,
# nuScenes v1.0-mini (smoke runs / overfitting; IoU not comparable).
_base_ = [
    '../_base_/datasets/nus_bev_mini.py',
    '../_base_/models/pointbev.py',
    '../_base_/upsamplers/bilinear.py',
    '../_base_/schedules/schedule_pointbev_100e.py',
    '../_base_/default_runtime.py',
]
custom_imports = dict(imports=['projects.bev.bev'], allow_failed_imports=False)
default_scope = 'mmjafar'
model = dict(grid={{_base_.grid}}, upsampler={{_base_.upsampler}}, target_stride={{_base_.target_stride}})
