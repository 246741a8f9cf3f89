# BEVFormer (static), DINOv2 ViT-S/14, Bilinear to stride 8 (the model base's upsampler), nuScenes v1.0-mini (smoke
# runs / overfitting; IoU not comparable). The FeatUp and JAFAR configs on this data inherit this one.
_base_ = ['../_base_/datasets/nus_bev_mini.py', '../_base_/models/bevformer.py',
          '../_base_/schedules/schedule_pointbev_100e.py', '../_base_/default_runtime.py']
model = dict(grid={{_base_.grid}})  # the dataset's grid
