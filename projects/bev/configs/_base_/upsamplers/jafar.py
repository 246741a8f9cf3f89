# JAFAR row: the released JAFAR for DINOv2 ViT-S/14, frozen, upsampling straight to stride 8 (28x60 at 224x480)
# with the normalised image as guidance. Weights from a local file (no hub); override with
# --cfg-options model.upsampler.init_cfg.checkpoint=PATH (or model.upsampler.init_cfg=None for random weights).
upsampler_checkpoint = 'checkpoints/jafar/vit_small_patch14_dinov2.lvd142m.pth'
upsampler = dict(type='JAFAR', v_dim=384, frozen=True,
                 init_cfg=dict(type='Pretrained', checkpoint=upsampler_checkpoint))
target_stride = 8
