"""Task-agnostic upsampler pretraining: the mmengine model (frozen backbone + trainable upsampler) and its losses."""
from .losses import CosineMSELoss
from .upsampler_pretrainer import UpsamplerPretrainer, gaussian_blur, round_to_multiple, seeded_generator

__all__ = ['CosineMSELoss', 'UpsamplerPretrainer', 'gaussian_blur', 'round_to_multiple', 'seeded_generator']
