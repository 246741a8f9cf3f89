# NAF (any backbone) upsamples the ViT maps before the lateral convs, starting from its released weights and
# fine-tuned with the model (frozen=True keeps them fixed).
_base_ = ['./upernet_vit-b16_bilinear_8xb2-80k_ade20k-512x512.py']
upsampler_checkpoint = 'checkpoints/naf/naf_release.pth'
model = dict(neck=dict(upsample_inputs=True, upsampler=dict(
    type='NAF', init_cfg=dict(type='Pretrained', checkpoint=upsampler_checkpoint))))
