# SegFormer MiT-B1, ADE20K 512x512 (mmseg's own config): the FeatUp paper's end-to-end experiment (Table 2), the
# decoder's upsampling of the stride 8, 16 and 32 levels to stride 4 done by a registered upsampler guided by the
# image (GuidedAlignNeck, one upsampler per channel count), so SegformerHead's own resizes become identities.
# This leaf uses Bilinear (the stock computation, up to where the resize happens); the others train from scratch.
_base_ = ['mmseg::segformer/segformer_mit-b1_8xb2-160k_ade20k-512x512.py']
custom_imports = dict(imports=['mmjafar'], allow_failed_imports=False)
model = dict(type='GuidedEncoderDecoder',
             neck=dict(type='GuidedAlignNeck', in_channels=[64, 128, 320, 512], upsampler=dict(type='Bilinear')))
