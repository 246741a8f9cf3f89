# Linear probe, DINOv2 ViT-S/14, cocostuff27 at 448x448, batch 4, 5 epochs (the Bilinear one's set-up):
# LoftUp (frozen) upsampling the features to 448x448.
_base_ = ['./bilinear_vit-s14-dinov2_1xb4-5e_cocostuff27-448x448.py']
# released weights of the upsampler (or --cfg-options model.neck.init_cfg.checkpoint=PATH)
upsampler_checkpoint = 'checkpoints/loftup/loftup_dinov2s.bin'
model = dict(neck=dict(type='LoftUp', dim=384, frozen=True,
                       init_cfg=dict(type='Pretrained', checkpoint=upsampler_checkpoint)))
