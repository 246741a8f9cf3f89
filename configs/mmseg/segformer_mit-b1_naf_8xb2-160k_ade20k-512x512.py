# The FeatUp Table 2 setting with NAF;
# one module for every level (it takes any channel count), the image encoded once; trained end to end from scratch.
_base_ = ['./segformer_mit-b1_bilinear_8xb2-160k_ade20k-512x512.py']
model = dict(neck=dict(upsampler=dict(type='NAF')))
