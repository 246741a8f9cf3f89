"""Feature upsamplers, one file per method, all called as ``forward(image, features, output_size)``."""
from .anyup import AnyUp
from .base import BaseUpsampler
from .carafe import CARAFE
from .dysample import DySample
from .featup import JBUStack
from .interpolate import Bicubic, Bilinear, Nearest
from .jafar import JAFAR
from .lift import LiFT
from .loftup import LoftUp
from .naf import NAF
from .sapa import SAPA
from .uplift import UPLiFT

__all__ = [
    'AnyUp', 'BaseUpsampler', 'Bicubic', 'Bilinear', 'CARAFE', 'DySample', 'JAFAR', 'JBUStack', 'LiFT', 'LoftUp',
    'NAF', 'Nearest', 'SAPA', 'UPLiFT'
]
