# Depth linear probe, DINOv2 ViT-S/14, NYUv2 at 448x448, 20 epochs (the Bilinear one's set-up):
# JAFAR (frozen) upsampling the features to 448x448.
_base_ = ['./bilinear_vit-s14-dinov2_1xb4-20e_nyu-depth-448x448.py']
# released weights of the upsampler (or --cfg-options model.neck.init_cfg.checkpoint=PATH)
upsampler_checkpoint = 'checkpoints/jafar/vit_small_patch14_dinov2.lvd142m.pth'
model = dict(neck=dict(type='JAFAR', v_dim=384, frozen=True,
                       init_cfg=dict(type='Pretrained', checkpoint=upsampler_checkpoint)))
