"""Utilities: ``mmjafar::`` config names (:mod:`.config`), normalisation constants (:mod:`.normalization`), the
upsampler benchmark (:mod:`.benchmark`) and process-level measurement helpers (:mod:`.profiling`)."""
from .config import config_root, register_config_package, resolve_config

__all__ = ['config_root', 'register_config_package', 'resolve_config']
