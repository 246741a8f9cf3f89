# UPerNet ViT-B/16, ADE20K 512x512: mmseg's own config with its MultiLevelNeck's x4 and x2 up-scales done by a
# registered upsampler guided by the image (GuidedMultiLevelNeck keeps in_channels, out_channels and scales).
# This leaf uses Bilinear: the stock neck's computation and parameter names, the reference of the other leaves.
_base_ = ['mmseg::vit/vit_vit-b16_mln_upernet_8xb2-80k_ade20k-512x512.py']
custom_imports = dict(imports=['mmjafar'], allow_failed_imports=False)
model = dict(type='GuidedEncoderDecoder', neck=dict(type='GuidedMultiLevelNeck', upsampler=dict(type='Bilinear')))
