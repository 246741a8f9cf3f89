"""Heads: the probe of the ADE20K probe hook (torch only) and, when mmsegmentation is installed, mmseg decode
heads for the linear-probe configs."""
from .pixel_probe import PixelProbe

__all__ = ['PixelProbe']

try:
    import mmseg  # noqa: F401
except ImportError:
    mmseg = None
if mmseg is not None:
    from .linear_depth_head import LinearDepthHead  # noqa: F401
    from .linear_probe_head import LinearProbeHead  # noqa: F401
    __all__ += ['LinearDepthHead', 'LinearProbeHead']
