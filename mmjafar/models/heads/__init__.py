"""mmseg decode heads (imported only when mmsegmentation is installed)."""
from .linear_probe_head import LinearProbeHead

__all__ = ['LinearProbeHead']
