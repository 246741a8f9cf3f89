# The FeatUp Table 2 setting with JAFAR;
# one per channel count (64 is the target level and stays as is); trained end to end from scratch.
_base_ = ['./segformer_mit-b1_bilinear_8xb2-160k_ade20k-512x512.py']
model = dict(neck=dict(upsampler=dict(type='JAFAR')))
