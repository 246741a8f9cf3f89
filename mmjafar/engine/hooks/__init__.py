"""Hooks of the mmjafar engine."""
from .export_upsampler_hook import ExportUpsamplerHook
from .heldout_upsampling_hook import HeldOutUpsamplingHook

__all__ = ['ExportUpsamplerHook', 'HeldOutUpsamplingHook']
