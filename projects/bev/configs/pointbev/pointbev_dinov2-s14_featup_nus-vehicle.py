# PointBeV, DINOv2 ViT-S/14, FeatUp JBU (2 x2 steps, then resize) to stride 8,
# nuScenes trainval vehicle segmentation, batch 1 per GPU, 100 epochs.
_base_ = [
    '../_base_/datasets/nus_bev.py',
    '../_base_/models/pointbev.py',
    '../_base_/upsamplers/featup.py',
    '../_base_/schedules/schedule_pointbev_100e.py',
    '../_base_/default_runtime.py',
]
custom_imports = dict(imports=['projects.bev.bev'], allow_failed_imports=False)
default_scope = 'mmjafar'
model = dict(grid={{_base_.grid}}, upsampler={{_base_.upsampler}}, target_stride={{_base_.target_stride}})
