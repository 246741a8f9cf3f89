# FeatUp row: the released JBU stack for DINOv2 ViT-S/14, frozen, run for 2 of its x2 stages (stride 14 -> 3.5)
# then bilinearly resized to stride 8 (FeatUpJBU). Weights from a local file (no hub); override with
# --cfg-options model.upsampler.init_cfg.checkpoint=PATH (or model.upsampler.init_cfg=None for random weights).
upsampler_checkpoint = 'checkpoints/featup/dinov2_jbu_stack_cocostuff.ckpt'
upsampler = dict(type='FeatUpJBU', feat_dim=384, num_steps=2, frozen=True,
                 init_cfg=dict(type='Pretrained', checkpoint=upsampler_checkpoint))
target_stride = 8
