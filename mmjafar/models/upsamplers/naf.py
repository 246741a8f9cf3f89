"""NAF: zero-shot feature upsampling with neighbourhood attention filtering (Chambon, Couairon et al., 2025)."""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from mmjafar.registry import MODELS
from ..layers import encode_and_pool_many, make_encoder
from ..layers.axial_rope import AxialRoPE2d
from ..layers.attention_impl import check_attn_impl
from ..layers.neighborhood_attention import neighborhood_attention_2d, neighborhood_logits
from .base import BaseUpsampler, SizeLike, unique_sizes


class NAFImageEncoder(nn.Module):
    """NAF's image code: two non-residual encoders (1x1 and 3x3 convolutions), pooled to the output grid, with RoPE.

    ``forward(image (B, 3, H_img, W_img), output_size (H, W)) -> (B, dim, H, W)``. Images more than 4 times the
    output size are first resized bilinearly to ``(min(H_img, 4 H, 4 W), min(W_img, 4 W, 4 H))`` (both minima
    involve both output sides, as in the official code, so a non-square output can change the aspect ratio).
    Parameter names (``encoder``, ``sem_encoder``, ``rope.periods``) follow the official module.
    """

    def __init__(self, in_channels: int = 3, out_channels: int = 256, heads_rope: int = 4,
                 rope_base: float = 100.0, rope_rescale: Optional[float] = 2.0, img_layers: int = 2) -> None:
        super().__init__()
        if out_channels % 2:
            raise ValueError(f'NAF: dim must be even (two encoders of dim / 2 channels), got {out_channels}')
        common = dict(num_blocks=img_layers, bias=True, residual=False)
        self.encoder = make_encoder(in_channels, out_channels // 2, kernel_size=1, block_kernel_size=1, **common)
        self.sem_encoder = make_encoder(in_channels, out_channels // 2, kernel_size=3, block_kernel_size=3,
                                        **common)
        self.rope = AxialRoPE2d(out_channels, heads_rope, base=rope_base, rescale_coords=rope_rescale)

    @staticmethod
    def resized_image(image: torch.Tensor, output_size: Tuple[int, int]) -> torch.Tensor:
        """The image the encoders see: resized when it is more than 4 times the output size (see class doc)."""
        (img_h, img_w), (out_h, out_w) = image.shape[-2:], output_size
        if img_h > 4 * out_h or img_w > 4 * out_w:
            size = (min(img_h, 4 * out_h, 4 * out_w), min(img_w, 4 * out_w, 4 * out_h))
            image = F.interpolate(image, size=size, mode='bilinear', align_corners=False)
        return image

    def forward(self, image: torch.Tensor, output_size: Tuple[int, int]) -> torch.Tensor:
        return self.forward_many(image, [output_size])[0]

    def forward_many(self, image: torch.Tensor, output_sizes: Sequence[Tuple[int, int]]) -> List[torch.Tensor]:
        """The code at every output size; sizes that see the same (resized) image share one encoder pass."""
        groups: Dict[Tuple[int, int], List[Tuple[int, int]]] = {}
        for size in unique_sizes(output_sizes):
            groups.setdefault(tuple(self.resized_image(image, size).shape[-2:]), []).append(size)
        codes = {}
        for sizes in groups.values():
            resized = self.resized_image(image, sizes[0])
            pooled = zip(encode_and_pool_many(self.encoder, resized, sizes),
                         encode_and_pool_many(self.sem_encoder, resized, sizes))
            codes.update({size: self.rope(torch.cat(pair, dim=1)) for size, pair in zip(sizes, pooled)})
        return [codes[tuple(size)] for size in output_sizes]


@MODELS.register_module()
class NAF(BaseUpsampler):
    """NAF neighbourhood-attention upsampler, exact to the official implementation and checkpoint-compatible.

    Encoder-agnostic: the only weights are in the image encoder, so one model upsamples features of any
    backbone and any channel count ``C`` (divisible by ``heads_attn``). Queries are the image code pooled to the
    output grid, keys the same code pooled to the feature grid, values the raw features. Every output pixel
    attends to a ``kernel_size x kernel_size`` dilated neighbourhood (NATTEN's border rule, dilation = output
    size // feature grid) of the keys and values enlarged with ``nearest-exact``; the values are split into
    ``heads_attn`` heads of ``C / heads_attn`` channels, each head producing its own channels.

    The attention runs in exact pure PyTorch with bounded memory on any device (:mod:`..layers.neighborhood_attention`),
    or with NATTEN's fused kernels on CUDA when ``natten`` is installed (optional).

    The released ``naf_release.pth`` (a plain state dict, with the RoPE ``periods`` buffer) loads strictly with
    ``load_state_dict``, ``mmengine.runner.load_checkpoint`` or ``init_cfg=dict(type='Pretrained', ...)``.

    Args:
        dim: channels of the image code (queries and keys).
        heads_attn: attention heads (the feature channels must be divisible by it).
        heads_rope: heads of the RoPE (channel groups with their own rotation).
        kernel_size: neighbourhood size (odd). The feature grid must be at least ``kernel_size`` on both sides
            (9x9 for the released model).
        use_encoder: must be True (the official module cannot run without its encoders: the RoPE needs ``dim``
            channels); kept for the official argument list.
        rope_base: base of the RoPE periods.
        rope_rescale: training-time coordinate rescaling of the RoPE (None disables it; no effect in eval).
        img_layers: blocks per image encoder.
        impl: attention implementation (:mod:`~mmjafar.models.layers.attention_impl`): None (the process-wide
            default, 'auto'), 'auto' (NATTEN on CUDA when installed, else 'torch'), 'torch' / 'reference' (the
            exact tiled PyTorch path) or 'natten'. Also an attribute.
        chunk_elements: working-set budget of the 'torch' attention in elements of logits.
        **kwargs: :class:`BaseUpsampler`'s arguments (output size, scale factor, freezing, checks, init).

    Example:
        >>> import torch
        >>> up = NAF().eval()
        >>> up(torch.randn(1, 3, 126, 126), torch.randn(1, 384, 9, 9), (36, 36)).shape
        torch.Size([1, 384, 36, 36])
    """

    def __init__(self, dim: int = 256, heads_attn: int = 4, heads_rope: int = 4, kernel_size: int = 9,
                 use_encoder: bool = True, rope_base: float = 100.0, rope_rescale: Optional[float] = 2.0,
                 img_layers: int = 2, impl: Optional[str] = None, chunk_elements: Optional[int] = None,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        if not use_encoder:
            raise ValueError('NAF: use_encoder=False is not supported: the official module then feeds the 3-channel '
                             f'image to a RoPE built for dim={dim} channels and fails; keep use_encoder=True')
        if dim % heads_attn:
            raise ValueError(f'NAF: dim ({dim}) must be divisible by heads_attn ({heads_attn})')
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f'NAF: kernel_size must be odd, got {kernel_size}')
        self.dim, self.heads_attn, self.kernel_size = dim, heads_attn, kernel_size
        self.impl, self.chunk_elements = check_attn_impl(impl, ('natten', ), 'NAF'), chunk_elements
        self.scale = (dim // heads_attn)**-0.5
        self.image_encoder = NAFImageEncoder(3, dim, heads_rope=heads_rope, rope_base=rope_base,
                                             rope_rescale=rope_rescale, img_layers=img_layers)

    def check_sizes(self, features: torch.Tensor, output_size: Tuple[int, int]) -> Tuple[int, int]:
        """Validate the feature grid and output size; returns the dilation ``(H // h, W // w)``."""
        (h, w), k = features.shape[-2:], self.kernel_size
        if features.shape[1] % self.heads_attn:
            raise ValueError(f'NAF: the feature channels ({features.shape[1]}) must be divisible by heads_attn '
                             f'({self.heads_attn}); each head filters C / heads_attn channels')
        if h < k or w < k:
            raise ValueError(f'NAF needs a feature grid of at least {k}x{k} (kernel_size {k}), got {h}x{w}: feed '
                             f'the backbone an image of at least {k} patches per side (e.g. {14 * k} px for '
                             'patch 14) or resize the features to that grid first')
        if output_size[0] < h or output_size[1] < w:
            raise ValueError(f'NAF upsamples only: output_size {tuple(output_size)} is smaller than the feature grid '
                             f'{h}x{w}; ask for an output at least as large as the features')
        return output_size[0] // h, output_size[1] // w

    def queries_and_keys(self, image: torch.Tensor, features: torch.Tensor,
                         output_size: Tuple[int, int]) -> Tuple[torch.Tensor, torch.Tensor]:
        """Queries ``(B, dim, H, W)`` (the image code) and keys ``(B, dim, h, w)`` (the code pooled to the grid)."""
        code = self.image_encoder(image, output_size)
        return code, F.adaptive_avg_pool2d(code, features.shape[-2:])

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, n * d, H, W) -> (B, n, H, W, d)`` with head-major channels."""
        b, c, h, w = x.shape
        return x.view(b, self.heads_attn, c // self.heads_attn, h, w).permute(0, 1, 3, 4, 2)

    def upsample_many(self, image: torch.Tensor, features: Sequence[torch.Tensor],
                      output_sizes: Sequence[Tuple[int, int]]) -> List[torch.Tensor]:
        dilations = [self.check_sizes(f, size) for f, size in zip(features, output_sizes)]
        codes = self.image_encoder.forward_many(image, output_sizes)
        outs = []
        for code, f, dilation in zip(codes, features, dilations):
            keys = F.adaptive_avg_pool2d(code, f.shape[-2:])
            out = neighborhood_attention_2d(self._heads(code), self._heads(keys), self._heads(f),
                                            (self.kernel_size, self.kernel_size), dilation, self.scale,
                                            impl=self.impl, chunk_elements=self.chunk_elements)
            outs.append(out.permute(0, 3, 1, 2))
        return outs

    @torch.no_grad()
    def attention_logits(self, image: torch.Tensor, features: torch.Tensor,
                         output_size: Optional[SizeLike] = None) -> torch.Tensor:
        """Scaled logits ``(B, heads, H, W, kernel_size**2)`` before the softmax, taps row-major (materialised;
        the official ``return_weights=True`` output, for visualisation)."""
        self.validate(image, features)
        output_size = self.resolve_output_size(image, features, output_size)
        dilation = self.check_sizes(features, output_size)
        queries, keys = self.queries_and_keys(image, features, output_size)
        return neighborhood_logits(self._heads(queries), self._heads(keys), (self.kernel_size, self.kernel_size),
                                   dilation, self.scale)

    def check_checkpoint(self, state_dict: Dict[str, torch.Tensor]) -> None:
        super().check_checkpoint(state_dict)
        weight = state_dict.get('image_encoder.encoder.0.weight')
        if weight is not None and weight.shape[0] * 2 != self.dim:
            raise ValueError(f'NAF: checkpoint has dim={weight.shape[0] * 2} but this module was built with '
                             f'dim={self.dim}; set dim={weight.shape[0] * 2}')
        periods = state_dict.get('image_encoder.rope.periods')
        own = self.image_encoder.rope.periods
        if periods is not None and periods.shape != own.shape:
            raise ValueError(f'NAF: checkpoint RoPE has {periods.shape[0]} periods per head, this module '
                             f'{own.shape[0]} (dim / heads_rope / 4); set heads_rope to the checkpoint\'s value')
