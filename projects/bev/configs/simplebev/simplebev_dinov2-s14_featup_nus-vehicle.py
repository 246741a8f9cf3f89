# SimpleBEV, DINOv2 ViT-S/14, nuScenes trainval vehicle segmentation, batch 1 per GPU, 100 epochs: the Bilinear config
# with FeatUp JBU (the released stack for DINOv2 ViT-S/14, frozen, 2 of its x2 stages, then resized to stride 8).
_base_ = ['./simplebev_dinov2-s14_bilinear_nus-vehicle.py']
# weights from a local file (no hub); override with --cfg-options model.upsampler.init_cfg.checkpoint=PATH
# (or model.upsampler.init_cfg=None for random weights)
upsampler_checkpoint = 'checkpoints/featup/dinov2_jbu_stack_cocostuff.ckpt'
model = dict(upsampler=dict(type='JBUStack', feat_dim=384, num_steps=2, frozen=True,
                            init_cfg=dict(type='Pretrained', checkpoint=upsampler_checkpoint)))
