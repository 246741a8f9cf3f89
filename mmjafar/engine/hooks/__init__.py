"""Hooks of the mmjafar engine."""
from .ade20k_probe_hook import ADE20KProbeHook
from .export_upsampler_hook import ExportUpsamplerHook
from .heldout_upsampling_hook import HeldOutUpsamplingHook

__all__ = ['ADE20KProbeHook', 'ExportUpsamplerHook', 'HeldOutUpsamplingHook']
