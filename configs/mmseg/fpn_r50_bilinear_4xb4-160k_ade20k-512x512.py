# Semantic FPN ResNet-50, ADE20K 512x512 (mmseg's own config, a CNN backbone): after mmseg's FPN neck, the stride
# 8, 16 and 32 maps (256 channels, one shared upsampler) are brought to stride 4 by a registered upsampler guided
# by the image, so FPNHead has nothing left to upsample (feature_strides all 4). This leaf uses Bilinear.
_base_ = ['mmseg::sem_fpn/fpn_r50_4xb4-160k_ade20k-512x512.py']
custom_imports = dict(imports=['mmjafar'], allow_failed_imports=False)
fpn_neck = {{_base_.model.neck}}  # mmseg's FPN, kept as the first neck of the chain
model = dict(
    type='GuidedEncoderDecoder',
    neck=[fpn_neck, dict(type='GuidedAlignNeck', in_channels=[256] * 4, upsampler=dict(type='Bilinear'))],
    decode_head=dict(feature_strides=[4, 4, 4, 4]))
