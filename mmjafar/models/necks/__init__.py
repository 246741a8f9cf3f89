"""Necks: the generic upsampler neck and the multi-level necks for stock mmseg decoders.

``GuidedMultiLevelNeck`` extends mmseg's ``MultiLevelNeck`` and is imported by :mod:`mmjafar.models` only when
mmsegmentation is installed; the others need torch and mmengine only.
"""
from .feature_upsampler_neck import FeatureUpsamplerNeck
from .guided_align_neck import GuidedAlignNeck
from .level_upsamplers import LevelUpsamplers

__all__ = ['FeatureUpsamplerNeck', 'GuidedAlignNeck', 'LevelUpsamplers']
