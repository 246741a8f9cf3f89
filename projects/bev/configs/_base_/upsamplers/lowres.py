# Low-Res row: no upsampler, the ViT's own 16x34 grid (stride 14) of 224x476 images goes to the neck. Leaves pick
# it with `model = dict(upsampler={{_base_.upsampler}}, target_stride={{_base_.target_stride}})` and use the
# 224x476 dataset configs (nus_bev_lowres*.py).
upsampler = None
target_stride = 14  # informative only: without an upsampler the map keeps the ViT grid
