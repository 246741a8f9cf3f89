"""Utilities: ``mmjafar::`` config names (:mod:`.config`) and the upsampler benchmark (:mod:`.benchmark`)."""
from .config import config_root, register_config_package, resolve_config

__all__ = ['config_root', 'register_config_package', 'resolve_config']
