# PointBeV, DINOv2 ViT-S/14, Bilinear to stride 8 (the model base's upsampler), tiny synthetic nuScenes (56x120
# images, 50x50x4 grid) for CI smoke runs. Random ViT / upsampler weights (no hub, no checkpoint files needed; load
# real ones with --cfg-options model.backbone.checkpoint=PATH ...). The FeatUp, JAFAR and Low-Res configs on this data
# inherit this one.
_base_ = ['../_base_/datasets/nus_bev_synthetic.py', '../_base_/models/pointbev.py',
          '../_base_/schedules/schedule_pointbev_100e.py', '../_base_/default_runtime.py']
# PointBeV's cell budgets scaled to the 2 500-cell grid (2 500 / 40 000 of the cells, 100 anchors -> 6, a
# 9x9 window of 0.5 m cells -> 3x3 of 2 m cells)
model = dict(grid={{_base_.grid}}, backbone=dict(pretrained=False, random_init=True),
             coarse_cells=160, fine_cells=160, fine_anchors=6, fine_kernel=3)
