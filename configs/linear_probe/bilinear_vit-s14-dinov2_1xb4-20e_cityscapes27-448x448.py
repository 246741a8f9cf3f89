# Linear probe, DINOv2 ViT-S/14, cityscapes27 at 448x448, batch 4, 20 epochs.
# Bilinear interpolation of the 32x32 DINOv2 features to 448x448 (training-free baseline). The other
# cityscapes27 configs inherit this one and change the neck (the model base's neck is Bilinear).
_base_ = ['../_base_/datasets/cityscapes27_probe-448.py', '../_base_/default_runtime.py',
          '../_base_/schedules/probe_20e.py']
