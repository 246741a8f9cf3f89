"""Necks: the generic upsampler neck (every upsampler is also a neck by itself)."""
from .feature_upsampler_neck import FeatureUpsamplerNeck

__all__ = ['FeatureUpsamplerNeck']
