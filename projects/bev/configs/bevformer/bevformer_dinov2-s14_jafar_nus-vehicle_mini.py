# BEVFormer (static), DINOv2 ViT-S/14, nuScenes v1.0-mini (smoke runs / overfitting; IoU not comparable): the Bilinear
# config with JAFAR (the released one for DINOv2 ViT-S/14, frozen, straight to stride 8 with the image as guidance).
_base_ = ['./bevformer_dinov2-s14_bilinear_nus-vehicle_mini.py']
# weights from a local file (no hub); override with --cfg-options model.upsampler.init_cfg.checkpoint=PATH
# (or model.upsampler.init_cfg=None for random weights)
upsampler_checkpoint = 'checkpoints/jafar/vit_small_patch14_dinov2.lvd142m.pth'
model = dict(upsampler=dict(type='JAFAR', v_dim=384, frozen=True,
                            init_cfg=dict(type='Pretrained', checkpoint=upsampler_checkpoint)))
