# Linear probe, DINOv2 ViT-S/14, cocostuff27 at 448x448, batch 4, 5 epochs.
# Bilinear interpolation of the 32x32 DINOv2 features to 448x448 (training-free baseline). The other
# cocostuff27 configs inherit this one and change the neck (the model base's neck is Bilinear).
_base_ = ['../_base_/datasets/cocostuff27_probe-448.py', '../_base_/default_runtime.py',
          '../_base_/schedules/probe_5e.py']
