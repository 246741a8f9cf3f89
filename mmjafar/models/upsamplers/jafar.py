"""JAFAR: Jack up Any Feature at Any Resolution (Couairon, Chambon et al., 2025)."""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from mmjafar.registry import MODELS
from ..layers import CrossAttentionBlock, RoPE2d, SFTModulation, apply_rope_2d, encode_and_pool_many, make_encoder
from ..layers.conv_blocks import run_layers
from ..layers.attention_impl import check_attn_impl, resolve_attn_impl
from ..layers.checkpoint_checks import check_dim
from .base import SizeLike, unique_sizes
from .image_code import ImageCodeUpsampler


@MODELS.register_module()
class JAFAR(ImageCodeUpsampler):
    """JAFAR attention-based feature upsampler, exact to the official implementation and checkpoint-compatible.

    A light encoder turns the guidance image into a 2-D-RoPE-augmented code; queries are that code pooled to the
    output size, keys the code pooled to the feature grid and modulated (SFT) by the L2-normalised features;
    the head-averaged attention weights interpolate the raw features::

        out = mean_h softmax(Q_h K_h^T / sqrt(d)) @ F

    Official checkpoints (bare state dicts, ``{'jafar': state_dict}`` training files, files with extra keys of
    unused modules) load strictly with ``load_state_dict``, ``mmengine.runner.load_checkpoint`` or
    ``init_cfg=dict(type='Pretrained', checkpoint=...)``.

    Args:
        input_dim: guidance image channels.
        qk_dim: width of the image code, queries and keys.
        v_dim: feature channels of the backbone (384 for ViT-S, 768 for ViT-B).
        kernel_size: kernel of the image encoder's first convolution.
        num_heads: attention heads.
        feature_dim: accepted for compatibility with the official configs; must equal ``v_dim`` if given.
        impl: attention implementation (:mod:`~mmjafar.models.layers.attention_impl`): None (the process-wide
            default, 'auto'), 'auto' or 'torch' (exact, chunked, bounded memory in forward and backward, faster
            encoders) or 'reference' (the official materialised path, for comparison). Also an attribute.
        chunk_elements: lean attention working-set budget in elements of logits (default 2**22).
        **kwargs: :class:`BaseUpsampler`'s arguments (output size, scale factor, freezing, checks, init).

    Example:
        >>> import torch
        >>> up = JAFAR(v_dim=384).eval()
        >>> up(torch.randn(1, 3, 112, 112), torch.randn(1, 384, 8, 8), (56, 40)).shape
        torch.Size([1, 384, 56, 40])
    """

    channels_arg = 'v_dim'
    checkpoint_wrapper_keys = ('jafar', )
    checkpoint_ignored_prefixes = ('query_features_encoder.', )

    def __init__(self, input_dim: int = 3, qk_dim: int = 128, v_dim: int = 384, kernel_size: int = 1,
                 num_heads: int = 4, feature_dim: Optional[int] = None, impl: Optional[str] = None,
                 chunk_elements: Optional[int] = None, **kwargs) -> None:
        super().__init__(**kwargs)
        if feature_dim is not None and feature_dim != v_dim:
            raise ValueError(f'JAFAR: feature_dim ({feature_dim}) and v_dim ({v_dim}) differ; v_dim is the '
                             'backbone\'s feature channel count')
        self.input_dim, self.qk_dim, self.v_dim, self.num_heads = input_dim, qk_dim, v_dim, num_heads
        impl = check_attn_impl(impl, owner=type(self).__name__)
        self.image_encoder = make_encoder(input_dim, qk_dim, kernel_size=kernel_size)
        self.key_encoder = make_encoder(qk_dim, qk_dim)
        self.query_encoder = make_encoder(qk_dim, qk_dim)
        self.norm = nn.GroupNorm(8, qk_dim, affine=False)
        self.key_features_encoder = make_encoder(v_dim, qk_dim)
        self.cross_decode = CrossAttentionBlock(qk_dim, qk_dim, v_dim, num_heads, impl=impl,
                                                chunk_elements=chunk_elements)
        self.sft_key = SFTModulation(qk_dim, qk_dim)
        self.rope = RoPE2d(qk_dim, theta=100)

    def queries_and_keys_many(self, image: torch.Tensor, features: Sequence[torch.Tensor],
                              output_sizes: Sequence[Tuple[int, int]]) -> Tuple[List[torch.Tensor], ...]:
        """:meth:`queries_and_keys` of several maps guided by one image; the image is encoded once."""
        queries, keys = self._queries_and_keys(image, features, output_sizes)
        return [self.norm(q) for q in queries], keys

    def _queries_and_keys(self, image: torch.Tensor, features: Sequence[torch.Tensor],
                          output_sizes: Sequence[Tuple[int, int]]) -> Tuple[List[torch.Tensor], ...]:
        """:meth:`queries_and_keys_many` before the queries' GroupNorm (``self.norm``)."""
        grids = [tuple(f.shape[-2:]) for f in features]
        sizes, unique_grids = unique_sizes(output_sizes), unique_sizes(grids)
        if resolve_attn_impl(self.impl) == 'reference':  # the official order of operations
            code = self.encode_image(image)
            full_q, full_k = self.query_encoder(code), self.key_encoder(code)
            pooled_q = [F.adaptive_avg_pool2d(full_q, s) for s in sizes]
            pooled_k = [F.adaptive_avg_pool2d(full_k, g) for g in unique_grids]
        else:
            pooled_q, pooled_k = self._lean_full_resolution(image, sizes, unique_grids)
        queries = dict(zip(sizes, pooled_q))
        keys = dict(zip(unique_grids, pooled_k))
        return ([queries[tuple(s)] for s in output_sizes],
                [self.sft_key(keys[g], self.key_features_encoder(F.normalize(f, dim=1)))
                 for g, f in zip(grids, features)])

    def _lean_full_resolution(self, image: torch.Tensor, sizes: Sequence[Tuple[int, int]],
                              grids: Sequence[Tuple[int, int]]) -> Tuple[List[torch.Tensor], List[torch.Tensor]]:
        """Everything that runs at the guidance image's resolution, ending in the pooled queries and keys.

        The same math as the official path, in channels-last memory layout, with the last 1x1 convolution of
        both encoders moved after the pooling (:func:`encode_and_pool_many`; skipped when pooling is the
        identity) and RoPE computed in row bands. The full-resolution encoders run once for all ``sizes``
        (queries) and ``grids`` (keys). With autograd, the full-resolution work is split into three segments
        (image encoder + RoPE, query branch, key branch) whose activations are recomputed in the backward pass
        (activation checkpointing), and inside each segment every ``norm -> SiLU -> conv`` group is checkpointed
        again (:func:`run_layers`): only segment inputs (the image and the RoPE code) are kept, and the
        recomputation of a segment holds two maps per block instead of every intermediate map of the image,
        query and key encoders.
        """
        needs_grad = torch.is_grad_enabled() and (
            image.requires_grad or any(p.requires_grad for p in self.parameters()))

        def run(fn, *args):
            return checkpoint(fn, *args, use_reentrant=False) if needs_grad else fn(*args)

        # channels-last layout: the 1x1 convolutions run as plain matrix products without layout reorders
        image = image.contiguous(memory_format=torch.channels_last)

        def image_code(x):  # rotates its fresh input in place without autograd
            return apply_rope_2d(run_layers(self.image_encoder, x, needs_grad), self.rope.freqs, inplace=not needs_grad)

        code = run(image_code, image)
        # keys first: autograd runs later-recorded nodes first, so the query segment's backward (whose input
        # gradient is pending since the attention's) finishes before the key segment is recomputed
        keys = run(encode_and_pool_many, self.key_encoder, code, grids, needs_grad)
        queries = run(encode_and_pool_many, self.query_encoder, code, sizes, needs_grad)
        return list(queries), list(keys)

    def upsample_many(self, image: torch.Tensor, features: Sequence[torch.Tensor],
                      output_sizes: Sequence[Tuple[int, int]]) -> List[torch.Tensor]:
        queries, keys = self._queries_and_keys(image, features, output_sizes)
        return [self.cross_decode(q, k, f, query_norm=self.norm) for q, k, f in zip(queries, keys, features)]

    @torch.no_grad()
    def attention_maps(self, image: torch.Tensor, features: torch.Tensor,
                       output_size: Optional[SizeLike] = None) -> torch.Tensor:
        """Head-averaged attention weights ``(B, H*W, h*w)`` (materialised; for visualisation)."""
        self.validate(image, features)
        queries, keys = self.queries_and_keys(image, features, self.resolve_output_size(image, features,
                                                                                        output_size))
        return self.cross_decode.attention_weights(queries, keys)

    def check_checkpoint(self, state_dict: Dict[str, torch.Tensor]) -> None:
        super().check_checkpoint(state_dict)
        check_dim('JAFAR', state_dict, 'key_features_encoder.0.weight', 1, 'v_dim', self.v_dim)
        check_dim('JAFAR', state_dict, 'image_encoder.0.weight', 0, 'qk_dim', self.qk_dim)
        check_dim('JAFAR', state_dict, 'image_encoder.0.weight', 1, 'input_dim', self.input_dim)
