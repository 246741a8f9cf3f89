# Linear probe, DINOv3 ViT-B/16, voc at 448x448, batch 4, 20 epochs: the ViT-S/16 config with
# DINOv3's ViT-B/16 (28x28 tokens, 768 channels) and JAFAR's release for it.
_base_ = ['./jafar_vit-s16-dinov3_1xb4-20e_voc-448x448.py']
# released weights of the upsampler (or --cfg-options model.neck.init_cfg.checkpoint=PATH)
upsampler_checkpoint = 'checkpoints/jafar/vit_base_patch16_dinov3.lvd1689m.pth'
model = dict(backbone=dict(model_name='vit_base_patch16_dinov3.lvd1689m'), decode_head=dict(in_channels=768),
             neck=dict(v_dim=768, init_cfg=dict(checkpoint=upsampler_checkpoint)))
