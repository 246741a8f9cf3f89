# JAFAR upsamples the ViT maps (768 channels, before the lateral convs) to strides 4 and 8; one JAFAR for both
# levels, the image encoded once per forward. Trained end to end from scratch here; to start from a JAFAR
# pretrained for this backbone (tools/pretrain_jafar.py), add init_cfg=dict(type='Pretrained', checkpoint=PATH)
# to the upsampler (and frozen=True to keep it fixed).
_base_ = ['./upernet_vit-b16_bilinear_8xb2-80k_ade20k-512x512.py']
model = dict(neck=dict(upsample_inputs=True, upsampler=dict(type='JAFAR')))
