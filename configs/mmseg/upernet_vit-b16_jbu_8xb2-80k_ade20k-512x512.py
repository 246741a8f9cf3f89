# FeatUp's JBU stack upsamples the ViT maps (before the lateral convs): two x2 stages for stride 4, one for
# stride 8 (one module, stages shared). Trained end to end from scratch.
_base_ = ['./upernet_vit-b16_bilinear_8xb2-80k_ade20k-512x512.py']
model = dict(neck=dict(upsample_inputs=True, upsampler=dict(type='JBUStack')))
