"""Losses of the BEV models (PointBeV's, used by JAFAR for all three models; design brief §2).

* ``seg``: BCE-with-logits with ``pos_weight`` (2.13), mean over the ``valid`` cells;
* ``centerness``: MSE between ``sigmoid(logit)`` and the Gaussian target over ``valid_centerness`` cells;
* ``offset``: L1 over the vehicle cells that are valid and not marked 255 (mean over cells × 2 channels);
* learned uncertainty weighting: ``Σ_k c_k e^{-w_k} L_k + 0.5 w_k`` with scalars ``w_k`` (init 0) and
  ``c = (10, 0.5, 0.5)``. The weighted terms are returned as ``loss_seg``, ``loss_centerness``, ``loss_offset``
  and the regularisers ``0.5 Σ w_k`` as ``loss_uncertainty``, so mmengine's ``parse_losses`` sums the total.

An optional ``pred_mask`` (B, 1, R, C) restricts every term to the cells a sparse model predicted (PointBeV).
Every mean divides by the number of selected elements, clamped to at least 1 (an empty selection gives 0).
"""
from typing import Dict, Mapping, Optional, Sequence

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import nn

from mmjafar.registry import MODELS
from ..structures import IGNORE_OFFSET

TERMS = ('seg', 'centerness', 'offset')


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` over ``mask`` (broadcast to its shape); 0 (with a gradient path) when mask is empty."""
    mask = mask.expand_as(values).to(values.dtype)
    return (values * mask).sum() / mask.sum().clamp_min(1.0)


@MODELS.register_module()
class BEVLoss(BaseModule):
    """Segmentation + centerness + offset losses with learned uncertainty weights.

    ``forward(preds, gt, pred_mask=None) -> dict`` of ``loss_*`` tensors, where ``preds`` has ``seg``
    (B, 1, R, C) logits and optionally ``centerness`` (B, 1, R, C) logits and ``offset`` (B, 2, R, C), and ``gt``
    is :func:`~projects.bev.bev.structures.stack_gt`'s output (``seg``, ``valid``, ``centerness``, ``offset``,
    ``valid_centerness``). Terms whose prediction is missing are skipped.

    Args:
        pos_weight: BCE weight of positive cells (2.13).
        loss_weights: ``c_k`` of (seg, centerness, offset).
        learn_uncertainty: learn ``w_k`` (otherwise the terms are ``c_k L_k``).
        divide_by_terms: divide the weighted sum by the number of terms, as PointBeV's code does (the brief's
            formula has no division; off by default).
        init_cfg: mmengine init config.
    """

    def __init__(self, pos_weight: float = 2.13, loss_weights: Sequence[float] = (10.0, 0.5, 0.5),
                 learn_uncertainty: bool = True, divide_by_terms: bool = False, init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        if len(loss_weights) != len(TERMS):
            raise ValueError(f'BEVLoss: loss_weights needs one weight per term {TERMS}, got {loss_weights}')
        if pos_weight <= 0:
            raise ValueError(f'BEVLoss: pos_weight must be positive, got {pos_weight}')
        self.pos_weight = float(pos_weight)
        self.register_buffer('loss_weights', torch.tensor([float(w) for w in loss_weights]), persistent=False)
        self.learn_uncertainty = learn_uncertainty
        self.divide_by_terms = divide_by_terms
        self.log_vars = nn.Parameter(torch.zeros(len(TERMS)), requires_grad=learn_uncertainty)

    def raw_losses(self, preds: Mapping[str, torch.Tensor], gt: Mapping[str, torch.Tensor],
                   pred_mask: Optional[torch.Tensor] = None) -> Dict[str, torch.Tensor]:
        """The unweighted ``L_k`` of the terms present in ``preds``."""
        if 'seg' not in preds:
            raise KeyError(f'BEVLoss: predictions need "seg" logits, got {sorted(preds)}')
        seg = preds['seg']
        if seg.shape[-2:] != gt['seg'].shape[-2:]:
            raise ValueError(f'BEVLoss: prediction grid {tuple(seg.shape[-2:])} differs from the GT grid '
                             f'{tuple(gt["seg"].shape[-2:])}; the model\'s grid must equal the dataset\'s grid')
        sel = torch.ones_like(gt['valid'], dtype=torch.bool) if pred_mask is None else pred_mask.bool()
        losses = {}
        valid = gt['valid'].bool() & sel
        bce = F.binary_cross_entropy_with_logits(seg.float(), gt['seg'].float(), reduction='none',
                                                 pos_weight=seg.new_tensor(self.pos_weight).float())
        losses['seg'] = masked_mean(bce, valid)
        if 'centerness' in preds:
            err = (preds['centerness'].float().sigmoid() - gt['centerness'].float()).square()
            losses['centerness'] = masked_mean(err, gt['valid_centerness'].bool() & sel)
        if 'offset' in preds:
            target = gt['offset'].float()
            keep = (gt['seg'] > 0.5) & valid & (target != IGNORE_OFFSET).all(dim=1, keepdim=True)
            losses['offset'] = masked_mean((preds['offset'].float() - target).abs(), keep)
        return losses

    def forward(self, preds: Mapping[str, torch.Tensor], gt: Mapping[str, torch.Tensor],
                pred_mask: Optional[torch.Tensor] = None) -> Dict[str, torch.Tensor]:
        raw = self.raw_losses(preds, gt, pred_mask)
        out, reg = {}, []
        scale = 1.0 / len(raw) if self.divide_by_terms else 1.0
        for k, name in enumerate(TERMS):
            if name not in raw:
                continue
            w = self.log_vars[k]
            if self.learn_uncertainty:
                out[f'loss_{name}'] = scale * self.loss_weights[k] * torch.exp(-w) * raw[name]
                reg.append(0.5 * w)
            else:
                out[f'loss_{name}'] = scale * self.loss_weights[k] * raw[name]
        if reg:
            out['loss_uncertainty'] = scale * torch.stack(reg).sum()
        return out
