# Linear probe, DINOv2 ViT-S/14, voc at 448x448, batch 4, 20 epochs (the Bilinear one's set-up):
# UPLiFT (frozen): 4 x2 steps (32x32 -> 512x512, the image encoded at 16/14 of its size), then bilinear to 448x448.
_base_ = ['./bilinear_vit-s14-dinov2_1xb4-20e_voc-448x448.py']
# released weights of the upsampler (or --cfg-options model.neck.init_cfg.checkpoint=PATH)
upsampler_checkpoint = 'checkpoints/uplift/uplift_dinov2-s14.safetensors'
model = dict(neck=dict(type='UPLiFT', arch='dinov2-s14', in_channels=384, frozen=True,
                       init_cfg=dict(type='Pretrained', checkpoint=upsampler_checkpoint)))
