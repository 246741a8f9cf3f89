"""Linear depth probe: BatchNorm + 1x1 convolution to one channel, bounded to ``(0, max_depth)``."""
from typing import Dict, List, Optional, Sequence, Union

import torch
from mmseg.models.utils import resize
from torch import Tensor, nn

from mmjafar.registry import MODELS
from .linear_probe_head import LinearProbeHead


@MODELS.register_module()
class LinearDepthHead(LinearProbeHead):
    """Depth linear probe for mmseg's ``DepthEstimator``: ``sigmoid(conv1x1(BN(x))) * max_depth``.

    ``(B, C, H, W) -> (B, 1, H, W)`` metres. The loss compares with ``gt_depth_map`` (mmseg's ``SiLogLoss`` by
    default; pixels without depth are ignored by it); ``DepthMetric`` reports δ1 and RMSE.

    Args:
        in_channels: feature channels.
        max_depth: largest predicted depth (10 m for NYUv2).
        in_index, batch_norm, dropout_ratio, align_corners, init_cfg: see :class:`LinearProbeHead`.
        loss_decode: mmseg depth loss config(s).
    """

    def __init__(self, in_channels: int, max_depth: float = 10.0, in_index: int = -1, batch_norm: bool = True,
                 dropout_ratio: float = 0.0, loss_decode: Union[Dict, Sequence[Dict]] = dict(type='SiLogLoss'),
                 align_corners: bool = False, init_cfg: Optional[Dict] = dict(
                     type='Normal', std=0.01, override=dict(name='conv_seg'))) -> None:
        super().__init__(in_channels=in_channels, num_classes=1, in_index=in_index, batch_norm=batch_norm,
                         dropout_ratio=dropout_ratio, loss_decode=loss_decode, align_corners=align_corners,
                         init_cfg=init_cfg)
        self.max_depth = max_depth

    def forward(self, inputs: List[Tensor]) -> Tensor:
        """Neck outputs -> depth ``(B, 1, H, W)`` in ``(0, max_depth)``."""
        return torch.sigmoid(super().forward(inputs)) * self.max_depth

    def loss_by_feat(self, seg_logits: Tensor, batch_data_samples: List) -> Dict[str, Tensor]:
        """Depth losses against the stacked ``gt_depth_map`` of the samples."""
        gt = torch.stack([sample.gt_depth_map.data for sample in batch_data_samples])
        pred = resize(seg_logits, size=gt.shape[2:], mode='bilinear', align_corners=self.align_corners)
        losses: Dict[str, Tensor] = {}
        fns = self.loss_decode if isinstance(self.loss_decode, nn.ModuleList) else [self.loss_decode]
        for fn in fns:
            losses[fn.loss_name] = losses.get(fn.loss_name, 0) + fn(pred, gt)
        return losses
