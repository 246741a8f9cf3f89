"""mmseg decode heads (imported only when mmsegmentation is installed)."""
from .linear_depth_head import LinearDepthHead
from .linear_probe_head import LinearProbeHead

__all__ = ['LinearDepthHead', 'LinearProbeHead']
