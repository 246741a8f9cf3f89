# The FeatUp Table 2 setting with DySample (task-dependent;
# point sampling), x2 stages as each level needs; trained end to end from scratch.
_base_ = ['./segformer_mit-b1_bilinear_8xb2-160k_ade20k-512x512.py']
model = dict(neck=dict(upsampler=dict(type='DySample')))
