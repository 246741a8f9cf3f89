"""mmseg EncoderDecoder that hands the normalised input image to the neck, for any backbone."""
from typing import List, Sequence, Union

from mmengine.model import BaseModule
from mmseg.models.segmentors import EncoderDecoder
from mmseg.utils import ConfigType, OptConfigType
from torch import Tensor, nn

from mmjafar.registry import MODELS
from mmjafar.structures import GuidedFeatures


def with_image(feats, image: Tensor) -> GuidedFeatures:
    """``feats`` (a tensor, tuple or list of maps) as GuidedFeatures carrying ``image`` (kept if already set)."""
    if isinstance(feats, Tensor):
        feats = (feats, )
    if isinstance(feats, GuidedFeatures) and feats.image is not None:
        return feats
    return GuidedFeatures(feats, image=image)


class NeckChain(BaseModule):
    """Several necks applied in turn, each receiving the guidance image (e.g. mmseg's ``FPN``, then an
    upsampling neck). Stock necks return plain tuples; the image is attached again after each one."""

    def __init__(self, necks: Sequence[ConfigType]) -> None:
        super().__init__()
        self.necks = nn.ModuleList(MODELS.build(cfg) for cfg in necks)

    def forward(self, feats: GuidedFeatures) -> GuidedFeatures:
        image = feats.image
        for neck in self.necks:
            feats = with_image(neck(feats), image)
        return feats


@MODELS.register_module()
class GuidedEncoderDecoder(EncoderDecoder):
    """``EncoderDecoder`` whose neck receives the guidance image with the backbone features.

    The one seam is :meth:`extract_feat`: the backbone's output (any mmseg backbone: ViT, MiT, Swin, ResNet,
    or an mmjafar backbone) is wrapped as :class:`~mmjafar.structures.GuidedFeatures` carrying ``inputs`` (the
    batch after the data preprocessor, i.e. normalised with its mean/std, ImageNet's for every upsampler here)
    before the neck runs. ``neck`` may also be a list of configs, applied in order, each with the image (e.g.
    ``[dict(type='FPN', ...), dict(type='GuidedAlignNeck', ...)]`` for Semantic FPN). Every other behaviour
    (loss, predict, slide/whole inference, auxiliary heads) is inherited unchanged; the other arguments are
    those of ``EncoderDecoder``.

    The one-line override of a stock config::

        model = dict(type='GuidedEncoderDecoder', neck=dict(type='GuidedMultiLevelNeck', upsampler=dict(type='JAFAR')))

    Call chain: ``inputs (B, 3, H, W) -> backbone -> GuidedFeatures(maps, image=inputs) -> neck(s) ->
    decode_head``.
    """

    def __init__(self, backbone: ConfigType, decode_head: ConfigType,
                 neck: Union[OptConfigType, List[ConfigType]] = None, **kwargs) -> None:
        chain = isinstance(neck, (list, tuple))
        super().__init__(backbone=backbone, decode_head=decode_head, neck=None if chain else neck, **kwargs)
        if chain:
            self.neck = NeckChain(neck)

    def extract_feat(self, inputs: Tensor) -> List[Tensor]:
        feats = with_image(self.backbone(inputs), inputs)
        if self.with_neck:
            feats = with_image(self.neck(feats), inputs)
        return feats
