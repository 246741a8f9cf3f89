# Linear probe, DINOv3 ViT-S/16, voc at 448x448, batch 4, 20 epochs: the DINOv2 JAFAR config with
# DINOv3's ViT-S/16 (28x28 tokens, 384 channels) and JAFAR's release for it.
_base_ = ['./jafar_vit-s14-dinov2_1xb4-20e_voc-448x448.py']
# released weights of the upsampler (or --cfg-options model.neck.init_cfg.checkpoint=PATH)
upsampler_checkpoint = 'checkpoints/jafar/vit_small_patch16_dinov3.lvd1689m.pth'
model = dict(backbone=dict(model_name='vit_small_patch16_dinov3.lvd1689m'),
             neck=dict(init_cfg=dict(checkpoint=upsampler_checkpoint)))
