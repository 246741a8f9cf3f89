"""Feature upsamplers, one file per method, all called as ``forward(image, features, output_size)``."""
from .base import BaseUpsampler
from .featup import JBUStack
from .interpolate import Bicubic, Bilinear, Nearest
from .jafar import JAFAR
from .lift import LiFT
from .loftup import LoftUp

__all__ = ['BaseUpsampler', 'Bicubic', 'Bilinear', 'JAFAR', 'JBUStack', 'LiFT', 'LoftUp', 'Nearest']
