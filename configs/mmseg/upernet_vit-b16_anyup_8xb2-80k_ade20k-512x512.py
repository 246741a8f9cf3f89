# AnyUp (any backbone) upsamples the ViT maps before the lateral convs, starting from its released weights and
# fine-tuned with the model (frozen=True keeps them fixed).
_base_ = ['./upernet_vit-b16_naf_8xb2-80k_ade20k-512x512.py']
upsampler_checkpoint = 'checkpoints/anyup/anyup_multi_backbone.pth'
model = dict(neck=dict(upsampler=dict(_delete_=True, type='AnyUp', init_cfg=dict(
    type='Pretrained', checkpoint=upsampler_checkpoint))))
