# SimpleBEV, DINOv2 ViT-S/14, Low-Res (no upsampler: the ViT's own grid, stride 14, goes to the neck), nuScenes
# trainval vehicle segmentation, batch 1 per GPU, 100 epochs; 224x476 images (16x34 tokens).
_base_ = ['../_base_/datasets/nus_bev_lowres.py', '../_base_/models/simplebev.py',
          '../_base_/schedules/schedule_pointbev_100e.py', '../_base_/default_runtime.py']
model = dict(grid={{_base_.grid}}, upsampler=None, target_stride=14)  # target_stride: informative only
