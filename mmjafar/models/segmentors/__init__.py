"""mmseg segmentors (imported only when mmsegmentation is installed)."""
from .guided_encoder_decoder import GuidedEncoderDecoder

__all__ = ['GuidedEncoderDecoder']
