"""Linear-probe decode head of the FeatUp / JAFAR evaluation protocol: BatchNorm + 1x1 convolution."""
from typing import Dict, List, Optional, Sequence, Union

from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from torch import Tensor, nn

from mmjafar.registry import MODELS


@MODELS.register_module()
class LinearProbeHead(BaseDecodeHead):
    """Per-pixel linear classifier on (upsampled) features: ``BatchNorm2d -> Dropout -> Conv2d(C, K, 1)``.

    ``(B, C, H, W) -> (B, num_classes, H, W)``. With an upsampler neck, ``H x W`` is already the output resolution,
    so the probe measures the upsampled features themselves (mmseg's loss and predict only resize the logits
    when the sizes still differ). Everything else (loss, ignore index, predict) is mmseg's ``BaseDecodeHead``.

    Args:
        in_channels: feature channels (384 for ViT-S/14, 768 for ViT-B).
        num_classes: classes of the dataset.
        in_index: which neck output to probe.
        batch_norm: apply the BatchNorm (the protocol); False gives a bare 1x1 conv (JAFAR's own script).
        dropout_ratio: dropout before the classifier (0 in the protocol).
        loss_decode: mmseg loss config(s) (default: cross-entropy averaged over labelled pixels, as torch's).
        ignore_index: label ignored by the loss and metric.
        align_corners: of the final logits resize, when one is needed.
        init_cfg: mmengine init config (default: normal(0, 0.01) on the classifier, as mmseg heads).

    Example:
        >>> import torch
        >>> head = LinearProbeHead(in_channels=8, num_classes=3)
        >>> tuple(head([torch.randn(2, 8, 16, 16)]).shape)
        (2, 3, 16, 16)
    """

    def __init__(self, in_channels: int, num_classes: int, in_index: int = -1, batch_norm: bool = True,
                 dropout_ratio: float = 0.0,
                 loss_decode: Union[Dict, Sequence[Dict]] = dict(
                     type='CrossEntropyLoss', loss_weight=1.0, avg_non_ignore=True),
                 ignore_index: int = 255, align_corners: bool = False, init_cfg: Optional[Dict] = dict(
                     type='Normal', std=0.01, override=dict(name='conv_seg'))) -> None:
        super().__init__(in_channels=in_channels, channels=in_channels, num_classes=num_classes,
                         dropout_ratio=dropout_ratio, in_index=in_index, loss_decode=loss_decode,
                         ignore_index=ignore_index, align_corners=align_corners, init_cfg=init_cfg)
        self.bn = nn.BatchNorm2d(in_channels) if batch_norm else nn.Identity()

    def forward(self, inputs: List[Tensor]) -> Tensor:
        """Neck outputs -> logits ``(B, num_classes, H, W)`` at the resolution of the probed map."""
        return self.cls_seg(self.bn(self._transform_inputs(inputs)))
