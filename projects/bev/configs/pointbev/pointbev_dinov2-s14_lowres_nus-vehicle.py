# PointBeV, DINOv2 ViT-S/14, Low-Res (no upsampler, 224x476 images, ViT grid 16x34),
# nuScenes trainval vehicle segmentation, batch 1 per GPU, 100 epochs.
_base_ = [
    '../_base_/datasets/nus_bev_lowres.py',
    '../_base_/models/pointbev.py',
    '../_base_/upsamplers/lowres.py',
    '../_base_/schedules/schedule_pointbev_100e.py',
    '../_base_/default_runtime.py',
]
custom_imports = dict(imports=['projects.bev.bev'], allow_failed_imports=False)
default_scope = 'mmjafar'
model = dict(grid={{_base_.grid}}, upsampler={{_base_.upsampler}}, target_stride={{_base_.target_stride}})
