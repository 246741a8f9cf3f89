"""Feature upsamplers, one file per method, all called as ``forward(image, features, output_size)``."""
from .base import BaseUpsampler
from .carafe import CARAFE
from .dysample import DySample
from .featup import JBUStack
from .interpolate import Bicubic, Bilinear, Nearest
from .jafar import JAFAR
from .lift import LiFT
from .loftup import LoftUp
from .sapa import SAPA

__all__ = [
    'BaseUpsampler', 'Bicubic', 'Bilinear', 'CARAFE', 'DySample', 'JAFAR', 'JBUStack', 'LiFT', 'LoftUp', 'Nearest',
    'SAPA'
]
