# JAFAR (one for the three coarse FPN levels, 256 channels), trained end to end from scratch.
_base_ = ['./fpn_r50_bilinear_4xb4-160k_ade20k-512x512.py']
model = dict(neck=[{{_base_.fpn_neck}}, dict(type='GuidedAlignNeck', in_channels=[256] * 4,
                                                  upsampler=dict(type='JAFAR'))])
