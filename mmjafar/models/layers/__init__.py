"""Small single-purpose modules shared by the upsamplers (torch only)."""
from .attention import (ATTN_IMPLS, CrossAttentionBlock, HeadAveragedCrossAttention, averaged_attention)
from .conv_blocks import ResBlock, encode_and_pool, make_encoder
from .rope import RoPE2d, apply_rope_2d, rope_angles
from .sft import SFTModulation

__all__ = [
    'ATTN_IMPLS', 'CrossAttentionBlock', 'HeadAveragedCrossAttention', 'averaged_attention', 'ResBlock',
    'encode_and_pool', 'make_encoder', 'RoPE2d', 'apply_rope_2d', 'rope_angles', 'SFTModulation'
]
