# SimpleBEV, DINOv2 ViT-S/14, Bilinear to stride 8 (the model base's upsampler), tiny synthetic nuScenes (56x120
# images, 50x50x4 grid) for CI smoke runs. Random ViT / upsampler weights (no hub, no checkpoint files needed; load
# real ones with --cfg-options model.backbone.checkpoint=PATH ...). The FeatUp, JAFAR and Low-Res configs on this data
# inherit this one.
_base_ = ['../_base_/datasets/nus_bev_synthetic.py', '../_base_/models/simplebev.py',
          '../_base_/schedules/schedule_pointbev_100e.py', '../_base_/default_runtime.py']
model = dict(grid={{_base_.grid}}, backbone=dict(pretrained=False, random_init=True))
