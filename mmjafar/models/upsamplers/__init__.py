"""Feature upsamplers, one file per method, all called as ``forward(image, features, output_size)``."""
from .base import BaseUpsampler
from .jafar import JAFAR

__all__ = ['BaseUpsampler', 'JAFAR']
