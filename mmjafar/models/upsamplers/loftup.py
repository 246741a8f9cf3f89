"""LoftUp: coordinate-based cross-attention feature upsampler (Huang et al., ICCV 2025), checkpoint-compatible."""
from typing import Dict, List, Sequence, Tuple

import torch
from torch import nn

from mmjafar.registry import MODELS
from ..layers.channel_norm import ChannelNorm, ChannelsFirstLayerNorm
from ..layers.checkpoint_checks import check_dim
from ..layers.conv_bn import conv_bn_relu
from ..layers.fourier import FourierFeatures, batch_min_max_scale
from ..layers.resize import resize_guidance
from .base import BaseUpsampler, unique_sizes


class _MinMaxScale(nn.Module):
    """Module form of :func:`batch_min_max_scale` (index 0 of LoftUp's ``fourier_feat``)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return batch_min_max_scale(x)


class _CrossAttention(nn.Module):
    """``MHA(LN_q(q), LN_kv(kv), LN_kv(kv))``: the same normalised low-res tokens serve as keys and values."""

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.norm_q = nn.LayerNorm(dim)
        self.norm_kv = nn.LayerNorm(dim)
        self.attention = nn.MultiheadAttention(dim, num_heads, batch_first=True)

    def forward(self, query: torch.Tensor, key_value: torch.Tensor) -> torch.Tensor:
        kv = self.norm_kv(key_value)
        return self.attention(self.norm_q(query), kv, kv, need_weights=False)[0]


class _FeedForward(nn.Module):
    """``LN -> Linear -> GELU -> Linear`` (index 3 is the identity left by upstream's dropout)."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, hidden), nn.GELU(), nn.Identity(),
                                 nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class _CrossAttentionTransformer(nn.Module):
    """Pre-norm residual cross-attention + feed-forward layers, then a final LayerNorm."""

    def __init__(self, dim: int, depth: int, num_heads: int, hidden: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.layers = nn.ModuleList(
            nn.ModuleList([_CrossAttention(dim, num_heads), _FeedForward(dim, hidden)]) for _ in range(depth))

    def forward(self, query: torch.Tensor, key_value: torch.Tensor) -> torch.Tensor:
        """``(B, Nq, D), (B, Nk, D) -> (B, Nq, D)``."""
        for attend, feed_forward in self.layers:
            query = attend(query, key_value) + query
            query = feed_forward(query) + query
        return self.norm(query)


class LoftUpCore(nn.Module):
    """LoftUp's upsampler proper (the ``upsampler.*`` part of its checkpoints), ``lr_pe_type='sine'``.

    Queries: Fourier features of the min-max scaled image (coordinates and colours, ``n_freqs`` frequencies)
    through a ChannelNorm and two 3x3 conv-BN-ReLU layers, one per pixel of the guidance grid. Keys = values: the
    low-res features with 20 sinusoidal channels of their own grid appended. A cross-attention transformer and a
    1x1 projection with a channels-first LayerNorm give the output.
    """

    def __init__(self, dim: int, n_freqs: int = 20, num_heads: int = 4, num_layers: int = 2) -> None:
        super().__init__()
        self.lr_pe = FourierFeatures(color_feats=False, n_freqs=5)
        self.fourier_feat = nn.Sequential(_MinMaxScale(), FourierFeatures(color_feats=True, n_freqs=n_freqs))
        width = dim + self.lr_pe.out_channels
        start = self.fourier_feat[1].out_channels
        self.first_conv = nn.Sequential(ChannelNorm(start), *conv_bn_relu(start, width), *conv_bn_relu(width, width))
        self.final_conv = nn.Sequential(nn.Conv2d(width, dim, kernel_size=1), ChannelsFirstLayerNorm(dim))
        self.ca_transformer = _CrossAttentionTransformer(width, num_layers, num_heads, hidden=dim)

    def forward(self, features: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        """``features (B, C, h, w)`` (channel-normalised), ``image (B, 3, H, W)`` -> ``(B, C, H, W)``."""
        return self.decode(features, self.encode_image(image))

    def encode_image(self, image: torch.Tensor) -> torch.Tensor:
        """The per-pixel queries ``(B, width, H, W)`` of the guidance image (independent of the features)."""
        return self.first_conv(self.fourier_feat(image))

    def decode(self, features: torch.Tensor, queries: torch.Tensor) -> torch.Tensor:
        """Cross-attention of the image queries to the feature tokens -> ``(B, C, H, W)``."""
        b, width, h, w = queries.shape
        keys = torch.cat([features, self.lr_pe(features)], dim=1)
        out = self.ca_transformer(queries.flatten(2).transpose(1, 2), keys.flatten(2).transpose(1, 2))
        return self.final_conv(out.transpose(1, 2).reshape(b, width, h, w))


@MODELS.register_module()
class LoftUp(BaseUpsampler):
    """LoftUp with its input channel norm, as the official hub models (``UpsamplerwithChannelNorm``) build it.

    The features go through a LayerNorm over channels (``channelnorm``); every pixel of the guidance image
    becomes a query (Fourier features of its coordinates and colours, min-max scaled with statistics over the
    *whole batch*, as upstream, so a sample's output depends on the batch) that cross-attends to the low-res
    feature tokens. The queries live on the output grid: when ``output_size`` differs from the image size, the
    image is first resized to it (area when shrinking, bilinear otherwise); at the image size this is exactly the
    official forward. The sinusoid features follow upstream's float32 operation order (see
    :mod:`mmjafar.models.layers.fourier`), which matters at LoftUp's top frequency (e^10).

    Checkpoints load strictly in their published formats: the released ``pytorch_model.bin`` files (keys
    ``upsampler.*`` and ``channelnorm.norm.*``, e.g. ``haiwen/loftup-dinov2s``) and the training checkpoints
    read by upstream's ``load_loftup_checkpoint`` (``state_dict`` with ``upsampler.*`` and the channel norm under
    ``model.1.norm.*``; backbone entries ``model.0.*`` are dropped).

    Args:
        dim: feature channels (384 for ViT-S/14).
        n_freqs: Fourier frequencies of the image features (20).
        num_heads, num_layers: cross-attention transformer (4 heads, 2 layers).
        lr_pe_type: only 'sine' (the positional code of every released checkpoint).
        lr_size: accepted for compatibility with upstream's constructor; unused with 'sine'.
        **kwargs: :class:`BaseUpsampler`'s arguments; without an ``output_size`` the output has the image's size.

    Example:
        >>> import torch
        >>> up = LoftUp(dim=384).eval()
        >>> up(torch.randn(1, 3, 32, 32), torch.randn(1, 384, 4, 4)).shape
        torch.Size([1, 384, 32, 32])
    """

    channels_arg = 'dim'
    checkpoint_ignored_prefixes = ('model.0.', )

    def __init__(self, dim: int = 384, n_freqs: int = 20, num_heads: int = 4, num_layers: int = 2,
                 lr_pe_type: str = 'sine', lr_size: int = 16, **kwargs) -> None:
        super().__init__(**kwargs)
        if lr_pe_type != 'sine':
            raise ValueError(f"LoftUp: lr_pe_type={lr_pe_type!r} is not supported; every released checkpoint uses "
                             "lr_pe_type='sine'")
        self.dim, self.lr_size = dim, lr_size
        self.upsampler = LoftUpCore(dim, n_freqs=n_freqs, num_heads=num_heads, num_layers=num_layers)
        self.channelnorm = ChannelNorm(dim)

    def upsample_many(self, image: torch.Tensor, features: Sequence[torch.Tensor],
                      output_sizes: Sequence[Tuple[int, int]]) -> List[torch.Tensor]:
        queries = {size: self.upsampler.encode_image(resize_guidance(image, size))
                   for size in unique_sizes(output_sizes)}
        return [self.upsampler.decode(self.channelnorm(f), queries[tuple(size)])
                for f, size in zip(features, output_sizes)]

    def _adapt_checkpoint(self, state_dict: Dict, prefix: str, *args) -> None:
        old = prefix + 'model.1.norm.'
        for key in [k for k in state_dict if k.startswith(old)]:
            state_dict[prefix + 'channelnorm.norm.' + key[len(old):]] = state_dict.pop(key)
        super()._adapt_checkpoint(state_dict, prefix, *args)

    def check_checkpoint(self, state_dict: Dict[str, torch.Tensor]) -> None:
        super().check_checkpoint(state_dict)
        check_dim('LoftUp', state_dict, 'upsampler.final_conv.0.weight', 0, 'dim', self.dim)
