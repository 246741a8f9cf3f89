# BEVFormer (static), FeatUp JBU (2 stages, then resize to stride 8), tiny synthetic nuScenes (56x120 images, 50x50x4
# grid) for CI smoke runs, 2 encoder layers: random ViT / upsampler weights (no hub, no checkpoint files needed; load
# real ones with --cfg-options model.backbone.checkpoint=PATH ...).
_base_ = [
    '../_base_/datasets/nus_bev_synthetic.py',
    '../_base_/models/bevformer.py',
    '../_base_/upsamplers/featup.py',
    '../_base_/schedules/schedule_pointbev_100e.py',
    '../_base_/default_runtime.py',
]
custom_imports = dict(imports=['projects.bev.bev'], allow_failed_imports=False)
default_scope = 'mmjafar'
# same upsampler as _base_/upsamplers/featup.py without its checkpoint
model = dict(grid={{_base_.grid}}, upsampler=dict(type='FeatUpJBU', feat_dim=384, num_steps=2, frozen=True),
             target_stride={{_base_.target_stride}}, backbone=dict(pretrained=False, random_init=True),
             view_transform=dict(num_layers=2))
