"""What JAFAR and AnyUp share: a full-resolution image code with 2-D RoPE whose pooled encodings are the queries and
keys of a head-averaged cross-attention (``cross_decode``) over the raw features."""
from typing import List, Sequence, Tuple

import torch

from ..layers.attention import cross_attention_impl
from ..layers.rope import apply_rope_2d
from .base import BaseUpsampler


class ImageCodeUpsampler(BaseUpsampler):
    """Base of :class:`~.jafar.JAFAR` and :class:`~.anyup.AnyUp` (not registered).

    Subclasses build ``image_encoder``, ``rope`` (:class:`~mmjafar.models.layers.RoPE2d`) and ``cross_decode`` (a
    :class:`~mmjafar.models.layers.CrossAttentionBlock`), and implement :meth:`queries_and_keys_many`. ``impl`` is
    the attention's own ``impl`` (:mod:`~mmjafar.models.layers.attention_impl`).
    """

    impl = cross_attention_impl()

    def encode_image(self, image: torch.Tensor) -> torch.Tensor:
        """The full-resolution image code with RoPE, ``(B, qk_dim, H_img, W_img)``."""
        return apply_rope_2d(self.image_encoder(image), self.rope.freqs)

    def queries_and_keys(self, image: torch.Tensor, features: torch.Tensor,
                         output_size: Tuple[int, int]) -> Tuple[torch.Tensor, torch.Tensor]:
        """Queries ``(B, qk, H, W)`` and keys ``(B, qk, h, w)`` of one map."""
        queries, keys = self.queries_and_keys_many(image, [features], [output_size])
        return queries[0], keys[0]

    def queries_and_keys_many(self, image: torch.Tensor, features: Sequence[torch.Tensor],
                              output_sizes: Sequence[Tuple[int, int]]) -> Tuple[List[torch.Tensor], ...]:
        """:meth:`queries_and_keys` of several maps guided by one image; the image is encoded once."""
        raise NotImplementedError
