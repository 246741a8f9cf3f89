# BEVFormer (static), Low-Res (no upsampler, 224x476 images, ViT grid 16x34), tiny synthetic nuScenes (56x120 images,
# 50x50x4 grid) for CI smoke runs, 2 encoder layers: random ViT / upsampler weights (no hub, no checkpoint files needed;
# load real ones with --cfg-options model.backbone.checkpoint=PATH ...).
_base_ = [
    '../_base_/datasets/nus_bev_synthetic.py',
    '../_base_/models/bevformer.py',
    '../_base_/upsamplers/lowres.py',
    '../_base_/schedules/schedule_pointbev_100e.py',
    '../_base_/default_runtime.py',
]
custom_imports = dict(imports=['projects.bev.bev'], allow_failed_imports=False)
default_scope = 'mmjafar'
model = dict(grid={{_base_.grid}}, upsampler={{_base_.upsampler}}, target_stride={{_base_.target_stride}},
             backbone=dict(pretrained=False, random_init=True),
             view_transform=dict(num_layers=2))
