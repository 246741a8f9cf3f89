"""Small single-purpose modules shared by the upsamplers (torch only)."""
from .attention import ATTN_IMPLS, CrossAttentionBlock, HeadAveragedCrossAttention, averaged_attention
from .attention_kernels import attention_probs
from .axial_rope import AxialRoPE2d
from .conv_blocks import ResBlock, encode_and_pool, encode_and_pool_many, make_encoder
from .feature_unification import LearnedFeatureUnification, gaussian_derivative_basis
from .neighborhood_attention import neighborhood_attention_2d, neighborhood_bias, neighborhood_indices
from .rope import RoPE2d, apply_rope_2d, rope_angles, rope_rotate
from .sft import SFTModulation
from .window_attention import WindowedCrossAttentionBlock, ratio_window_bias, windowed_attention

__all__ = [
    'ATTN_IMPLS', 'CrossAttentionBlock', 'HeadAveragedCrossAttention', 'averaged_attention', 'ResBlock',
    'encode_and_pool', 'encode_and_pool_many', 'make_encoder', 'RoPE2d', 'apply_rope_2d', 'rope_angles',
    'SFTModulation',
    'attention_probs', 'AxialRoPE2d', 'LearnedFeatureUnification', 'gaussian_derivative_basis',
    'neighborhood_attention_2d', 'neighborhood_bias', 'neighborhood_indices', 'rope_rotate',
    'WindowedCrossAttentionBlock', 'ratio_window_bias', 'windowed_attention'
]
