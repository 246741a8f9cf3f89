"""mmseg EncoderDecoder that hands the normalised input image to the neck, for any backbone."""
from typing import List

from mmseg.models.segmentors import EncoderDecoder
from torch import Tensor

from mmjafar.registry import MODELS
from mmjafar.structures import GuidedFeatures


@MODELS.register_module()
class GuidedEncoderDecoder(EncoderDecoder):
    """``EncoderDecoder`` whose neck receives the guidance image with the backbone features.

    mmjafar backbones already return :class:`~mmjafar.structures.GuidedFeatures`, so a stock ``EncoderDecoder``
    is enough for them; this segmentor is for third-party backbones (mmseg's ``VisionTransformer``, ResNets...)
    that return a plain tuple or tensor: :meth:`extract_feat` wraps it as GuidedFeatures carrying ``inputs`` (the
    batch after the data preprocessor, i.e. normalised with its mean/std, ImageNet's for every upsampler here)
    before the neck runs. Every other behaviour (loss, predict, slide/whole inference, auxiliary heads) is
    inherited unchanged; the arguments are those of ``EncoderDecoder``.

    Call chain: ``inputs (B, 3, H, W) -> backbone -> GuidedFeatures(maps, image=inputs) -> neck (an upsampler)
    -> decode_head``.
    """

    def extract_feat(self, inputs: Tensor) -> List[Tensor]:
        feats = self.backbone(inputs)
        if isinstance(feats, Tensor):
            feats = (feats, )
        if not isinstance(feats, GuidedFeatures) or feats.image is None:
            feats = GuidedFeatures(feats, image=inputs)
        if self.with_neck:
            feats = self.neck(feats)
        return feats
