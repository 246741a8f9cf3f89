"""``BEVIoUMetric``: vehicle IoU over the whole split, summed TP/FP/FN (design brief §1, §4)."""
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from mmengine.evaluator import BaseMetric

from mmjafar.registry import METRICS


def _field(container, key: str):
    """``container.key`` for data elements, ``container[key]`` for their ``to_dict()`` form."""
    if isinstance(container, dict):
        if key not in container:
            raise KeyError(f'BEVIoUMetric: data sample has no {key!r}; the model must set pred_bev and the '
                           'pipeline gt_bev (RasterizeBEVTargets)')
        return container[key]
    return getattr(container, key)


def confusion_counts(pred: torch.Tensor, gt: torch.Tensor, valid: torch.Tensor,
                     threshold: float = 0.5) -> Dict[str, int]:
    """``tp``, ``fp``, ``fn`` of ``pred >= threshold`` against ``gt`` over ``valid`` cells (all same shape)."""
    pred = torch.as_tensor(pred)
    gt = torch.as_tensor(gt).bool()
    valid = torch.as_tensor(valid).bool()
    if not pred.shape == gt.shape == valid.shape:
        raise ValueError(f'BEVIoUMetric: pred {tuple(pred.shape)}, gt {tuple(gt.shape)} and valid '
                         f'{tuple(valid.shape)} must match; predict on the GT grid')
    pos = (pred >= threshold) & valid
    gt = gt & valid
    return dict(tp=int((pos & gt).sum()), fp=int((pos & ~gt).sum()), fn=int((~pos & gt).sum()))


@METRICS.register_module()
class BEVIoUMetric(BaseMetric):
    """Vehicle IoU = ΣTP / (ΣTP + ΣFP + ΣFN) over the ``valid`` cells of every sample (not a mean of
    per-sample IoUs). Positive ⇔ ``pred_bev.seg`` (probabilities) ≥ ``threshold``.

    ``process`` keeps three integers per sample, so ``collect_results(results, len(dataset))`` drops the
    samples that ``DefaultSampler`` pads in distributed evaluation and the result equals a single-process run.

    Args:
        threshold: probability threshold.
        collect_device: ``'cpu'`` or ``'gpu'`` (mmengine).
        prefix: key prefix (default ``'bev'``, giving ``'bev/iou_vehicle'``).
    """

    default_prefix: Optional[str] = 'bev'

    def __init__(self, threshold: float = 0.5, collect_device: str = 'cpu', prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        if not 0.0 < threshold < 1.0:
            raise ValueError(f'BEVIoUMetric: threshold must lie in (0, 1) (probabilities), got {threshold}')
        self.threshold = float(threshold)

    def process(self, data_batch, data_samples: Sequence) -> None:
        for sample in data_samples:
            pred = _field(_field(sample, 'pred_bev'), 'seg')
            gt_bev = _field(sample, 'gt_bev')
            counts = confusion_counts(pred.detach().cpu(), _field(gt_bev, 'seg').cpu(),
                                      _field(gt_bev, 'valid').cpu(), self.threshold)
            self.results.append((counts['tp'], counts['fp'], counts['fn']))

    def compute_metrics(self, results: List) -> Dict[str, float]:
        tp, fp, fn = (int(v) for v in np.sum(np.asarray(results, dtype=np.int64).reshape(-1, 3), axis=0))
        union = tp + fp + fn
        # No vehicle anywhere and none predicted: IoU is undefined.
        return dict(iou_vehicle=tp / union if union > 0 else float("nan"))
