"""Data structures shared by backbones, necks and upsamplers (torch only)."""
from typing import Iterable, Optional

import torch


class GuidedFeatures(tuple):
    """A tuple of feature maps that also carries the guidance image they were computed from.

    mmjafar backbones return this instead of a plain tuple. It behaves exactly like the tuple of
    ``(B, C, h, w)`` maps that OpenMMLab necks and decode heads expect (indexing, ``in_index``, ``len``),
    and guided upsamplers used as necks read the normalised input image from :attr:`image`. This is how
    the image reaches ``neck=dict(type='JAFAR')`` inside a stock ``EncoderDecoder``.

    Args:
        features: the feature maps, each ``(B, C, h, w)``.
        image: the normalised guidance image ``(B, 3, H, W)`` (the backbone's input), or None.
    """

    image: Optional[torch.Tensor]

    def __new__(cls, features: Iterable[torch.Tensor], image: Optional[torch.Tensor] = None):
        obj = super().__new__(cls, tuple(features))
        obj.image = image
        return obj

    def __reduce__(self):  # keep the image through pickling / deepcopy
        return (GuidedFeatures, (tuple(self), self.image))

    def __repr__(self) -> str:
        shapes = ', '.join(str(tuple(f.shape)) for f in self)
        img = None if self.image is None else tuple(self.image.shape)
        return f'GuidedFeatures([{shapes}], image={img})'
