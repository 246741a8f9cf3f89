"""AnyUp: universal feature upsampling (Wimmer et al., ICLR 2026)."""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F

from mmjafar.registry import MODELS
from ..layers import RoPE2d, encode_and_pool_many, make_encoder
from ..layers.attention_impl import check_attn_impl, resolve_attn_impl
from ..layers.feature_unification import LearnedFeatureUnification
from ..layers.neighborhood_attention import neighborhood_attention_2d
from ..layers.window_attention import WindowedCrossAttentionBlock, ratio_window_bias
from .base import SizeLike, unique_sizes
from .image_code import ImageCodeUpsampler


@MODELS.register_module()
class AnyUp(ImageCodeUpsampler):
    """AnyUp windowed-attention upsampler, exact to the official implementation and checkpoint-compatible.

    Encoder-agnostic: a feature-agnostic input layer (:class:`LearnedFeatureUnification`) maps features of any
    channel count to ``qk_dim``, so one trained model serves every backbone. As in JAFAR, the head-averaged
    attention weights of image-code queries over keys interpolate the raw features; keys combine the pooled image
    code with the unified features, and every output pixel only sees keys within ``window_ratio`` of its
    position (relative to the image; bounds in float32 as upstream).

    Attention paths (``impl``, :mod:`~mmjafar.models.layers.attention_impl`): 'auto' (default) or 'torch' computes
    the masked attention tile by tile, each tile of output pixels against the key rectangle it can see (exact to
    the dense masked result, bounded memory, no ``B x heads x Nq x Nk`` tensor); 'reference' is the official dense
    ``nn.MultiheadAttention`` with the mask.
    ``use_natten=True`` switches to the official optional NATTEN variant instead (a dilated neighbourhood of
    ``odd(max(3, round(2 * window_ratio * h)))`` keys per axis on the nearest-enlarged keys; windows differ
    slightly from the mask), computed in pure PyTorch, or with NATTEN's kernels on CUDA when installed. Both use
    the same weights.

    Released checkpoints (``anyup_paper.pth``, ``anyup_multi_backbone.pth``: plain state dicts; training files:
    the same under ``'anyup'``) load strictly with ``load_state_dict``, ``mmengine.runner.load_checkpoint`` or
    ``init_cfg=dict(type='Pretrained', checkpoint=...)``.

    Args:
        input_dim: guidance image channels.
        qk_dim: width of the image code, queries and keys.
        kernel_size: kernel of the image encoder's first convolution.
        kernel_size_lfu: filter size of the feature unification layer.
        window_ratio: half-size of the attention window relative to the image (<= 0: no window).
        num_heads: attention heads.
        init_gaussian_derivatives: initialise the unification filters with Gaussian derivatives.
        use_natten: use the NATTEN-style neighbourhood windows (see above) instead of the window mask.
        lfu_dim: filters of the unification layer (default ``qk_dim``).
        impl: None (the process-wide default, 'auto'), 'auto', 'torch' or 'reference' (see above; the NATTEN
            variant takes NATTEN's kernels with 'auto' where they can run). Also an attribute.
        chunk_elements: working-set budget in elements of the lean attention and the unification layer.
        **kwargs: :class:`BaseUpsampler`'s arguments (output size, scale factor, freezing, checks, init).

    Example:
        >>> import torch
        >>> up = AnyUp().eval()
        >>> up(torch.randn(1, 3, 112, 112), torch.randn(1, 768, 8, 8), (56, 56)).shape
        torch.Size([1, 768, 56, 56])
    """

    checkpoint_wrapper_keys = ('anyup', )

    def __init__(self, input_dim: int = 3, qk_dim: int = 128, kernel_size: int = 1, kernel_size_lfu: int = 5,
                 window_ratio: float = 0.1, num_heads: int = 4, init_gaussian_derivatives: bool = False,
                 use_natten: bool = False, lfu_dim: Optional[int] = None, impl: Optional[str] = None,
                 chunk_elements: Optional[int] = None, **kwargs) -> None:
        super().__init__(**kwargs)
        lfu_dim = qk_dim if lfu_dim is None else lfu_dim
        impl = check_attn_impl(impl, owner=type(self).__name__)
        self.input_dim, self.qk_dim, self.lfu_dim, self.num_heads = input_dim, qk_dim, lfu_dim, num_heads
        self.window_ratio, self.use_natten = window_ratio, use_natten
        encoder = dict(layout='sequential')
        self.image_encoder = make_encoder(input_dim, qk_dim, kernel_size=kernel_size, **encoder)
        self.key_encoder = make_encoder(qk_dim, qk_dim, **encoder)
        self.query_encoder = make_encoder(qk_dim, qk_dim, **encoder)
        unification = LearnedFeatureUnification(lfu_dim, kernel_size_lfu, init_gaussian_derivatives,
                                                chunk_elements=chunk_elements)
        self.key_features_encoder = make_encoder(lfu_dim, qk_dim, stem=unification, **encoder)
        self.cross_decode = WindowedCrossAttentionBlock(qk_dim, qk_dim, qk_dim, num_heads, impl=impl,
                                                        chunk_elements=chunk_elements, value_norm=False,
                                                        mha_value='key')
        self.aggregation = make_encoder(2 * qk_dim, qk_dim, kernel_size=3, **encoder)
        self.rope = RoPE2d(qk_dim, theta=100)

    def unify_features(self, features: torch.Tensor) -> torch.Tensor:
        """``(B, C, h, w)`` features of any width to ``(B, qk_dim, h, w)`` (the ``key_features_encoder``)."""
        return self.key_features_encoder(F.normalize(features, dim=1))

    def queries_and_keys_many(self, image: torch.Tensor, features: Sequence[torch.Tensor],
                              output_sizes: Sequence[Tuple[int, int]]) -> Tuple[List[torch.Tensor], ...]:
        """:meth:`queries_and_keys` of several maps guided by one image; the image is encoded once."""
        code = self.encode_image(image)
        grids = [tuple(f.shape[-2:]) for f in features]
        sizes, unique_grids = unique_sizes(output_sizes), unique_sizes(grids)
        if resolve_attn_impl(self.impl) == 'reference':
            full_q, full_k = self.query_encoder(code), self.key_encoder(code)
            pooled_q = [F.adaptive_avg_pool2d(full_q, s) for s in sizes]
            pooled_k = [F.adaptive_avg_pool2d(full_k, g) for g in unique_grids]
            del full_q, full_k
        else:
            pooled_q = encode_and_pool_many(self.query_encoder, code, sizes)
            pooled_k = encode_and_pool_many(self.key_encoder, code, unique_grids)
        del code
        queries, keys = dict(zip(sizes, pooled_q)), dict(zip(unique_grids, pooled_k))
        return ([queries[tuple(s)] for s in output_sizes],
                [self.aggregation(torch.cat([keys[g], self.unify_features(f)], dim=1))
                 for g, f in zip(grids, features)])

    def window_bias(self, output_size: Tuple[int, int], grid: Tuple[int, int], device=None):
        """Row ``(H, h)`` and column ``(W, w)`` logit biases of the attention window (0 inside, -inf outside)."""
        return (ratio_window_bias(output_size[0], grid[0], self.window_ratio, device=device),
                ratio_window_bias(output_size[1], grid[1], self.window_ratio, device=device))

    def natten_window(self, output_size: Tuple[int, int], grid: Tuple[int, int]):
        """Kernel size and dilation of the official NATTEN variant for this output size and feature grid."""
        if 0 < self.window_ratio < 0.5:
            kernel = tuple(max(3, round(2 * self.window_ratio * n)) | 1 for n in grid)
        else:
            kernel = tuple(grid)
        return kernel, (output_size[0] // grid[0], output_size[1] // grid[1])

    def upsample_many(self, image: torch.Tensor, features: Sequence[torch.Tensor],
                      output_sizes: Sequence[Tuple[int, int]]) -> List[torch.Tensor]:
        queries, keys = self.queries_and_keys_many(image, features, output_sizes)
        outs = []
        for q, k, f, size in zip(queries, keys, features, output_sizes):
            if self.use_natten:
                outs.append(self._natten_attention(q, k, f, size))
            else:
                outs.append(self.cross_decode(q, k, f, *self.window_bias(size, tuple(f.shape[-2:]), q.device)))
        return outs

    def _natten_attention(self, queries: torch.Tensor, keys: torch.Tensor, features: torch.Tensor,
                          output_size: Tuple[int, int]) -> torch.Tensor:
        block, grid = self.cross_decode, tuple(features.shape[-2:])
        kernel, dilation = self.natten_window(output_size, grid)
        q, k = block.cross_attn.project(block.tokens(block.conv2d(queries)), block.tokens(keys))  # q pre-scaled
        q, k = q.unflatten(2, output_size), k.unflatten(2, grid)
        values = features.permute(0, 2, 3, 1)[:, None].expand(-1, self.num_heads, -1, -1, -1)
        try:
            out = neighborhood_attention_2d(q, k, values, kernel, dilation, scale=1.0, average_heads=True,
                                            impl=self.impl, chunk_elements=block.cross_attn.chunk_elements)
        except ValueError as err:
            raise ValueError(f'AnyUp(use_natten=True): {err}; the NATTEN variant needs the output to be at least '
                             'kernel x (output // grid) on each axis; use the default use_natten=False') from err
        return out.permute(0, 3, 1, 2)

    @torch.no_grad()
    def attention_maps(self, image: torch.Tensor, features: torch.Tensor,
                       output_size: Optional[SizeLike] = None) -> torch.Tensor:
        """Head-averaged windowed attention weights ``(B, H*W, h*w)`` (materialised; for visualisation)."""
        self.validate(image, features)
        output_size = self.resolve_output_size(image, features, output_size)
        queries, keys = self.queries_and_keys(image, features, output_size)
        bias = self.window_bias(output_size, tuple(features.shape[-2:]), queries.device)
        return self.cross_decode.attention_weights(queries, keys, *bias)

    def check_checkpoint(self, state_dict: Dict[str, torch.Tensor]) -> None:
        super().check_checkpoint(state_dict)
        weight = state_dict.get('image_encoder.0.weight')
        if weight is not None and tuple(weight.shape[:2]) != (self.qk_dim, self.input_dim):
            raise ValueError(f'AnyUp: checkpoint has qk_dim={weight.shape[0]}, input_dim={weight.shape[1]} but this '
                             f'module was built with qk_dim={self.qk_dim}, input_dim={self.input_dim}')
        basis = state_dict.get('key_features_encoder.0.basis')
        own = self.key_features_encoder[0].basis
        if basis is not None and basis.shape != own.shape:
            raise ValueError(f'AnyUp: checkpoint feature-unification basis is {tuple(basis.shape)}, this module\'s '
                             f'{tuple(own.shape)}; set lfu_dim={basis.shape[0]}, kernel_size_lfu={basis.shape[-1]}')
        if any(key.startswith('cross_decode.cross_attn.q_proj') for key in state_dict):
            raise ValueError('AnyUp: this state dict comes from the official model after its cross_decode was '
                             'swapped for the NATTEN block; load the released checkpoint (same keys as AnyUp()) '
                             'and build AnyUp(use_natten=True) instead')
