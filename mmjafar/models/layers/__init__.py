"""Small single-purpose modules shared by the upsamplers (torch only), and the project-wide policies they follow:

* output sizes from a size and a scale factor or stride: :mod:`.sizes` (:func:`scaled_size`);
* freezing: :mod:`.freezing` (:func:`freeze`, :class:`FreezableMixin`);
* the attention implementation (``impl=``): :mod:`.attention_impl` (:func:`resolve_attn_impl`).

Everything listed in ``__all__`` is public API (``projects/`` use only these names).
"""
from .attention import CrossAttentionBlock, HeadAveragedCrossAttention, averaged_attention
from .attention_impl import (ATTN_IMPLS, check_attn_impl, get_attn_impl, resolve_attn_impl, set_attn_impl,
                             use_kernel_impl)
from .attention_kernels import attention_probs
from .axial_rope import AxialRoPE2d
from .conv_blocks import ResBlock, encode_and_pool, encode_and_pool_many, make_encoder
from .device_kernels import kernel_unsupported
from .feature_unification import LearnedFeatureUnification, gaussian_derivative_basis
from .freezing import FreezableMixin, freeze
from .neighborhood_attention import neighborhood_attention_2d, neighborhood_bias, neighborhood_indices
from .resize import resize_features
from .rope import RoPE2d, apply_rope_2d, rope_angles, rope_rotate
from .sft import SFTModulation
from .sizes import SizeLike, check_scale, scaled_size, to_size, unique_sizes
from .window_attention import WindowedCrossAttentionBlock, ratio_window_bias, windowed_attention

__all__ = [
    # policies
    'SizeLike', 'check_scale', 'scaled_size', 'to_size', 'unique_sizes', 'FreezableMixin', 'freeze', 'ATTN_IMPLS',
    'check_attn_impl', 'get_attn_impl', 'resolve_attn_impl', 'set_attn_impl', 'use_kernel_impl',
    'kernel_unsupported',
    # attention
    'CrossAttentionBlock', 'HeadAveragedCrossAttention', 'averaged_attention', 'attention_probs',
    'WindowedCrossAttentionBlock', 'ratio_window_bias', 'windowed_attention', 'neighborhood_attention_2d',
    'neighborhood_bias', 'neighborhood_indices',
    # encoders, positional codes, modulation, resizing
    'ResBlock', 'encode_and_pool', 'encode_and_pool_many', 'make_encoder', 'LearnedFeatureUnification',
    'gaussian_derivative_basis', 'AxialRoPE2d', 'RoPE2d', 'apply_rope_2d', 'rope_angles', 'rope_rotate',
    'SFTModulation', 'resize_features'
]
