"""Semantic-segmentation counts and scores without mmseg: mmseg's IoU statistics as integer counts (summable over
images and processes), then mIoU and pixel accuracy.

Example:
    >>> import torch
    >>> counts = segmentation_counts(torch.tensor([0, 1, 1]), torch.tensor([0, 1, 0]), num_classes=2)
    >>> counts.tolist()
    [[1, 1], [2, 2], [2, 1]]
    >>> miou_and_accuracy(counts)['mIoU']
    50.0
"""
from typing import Dict

import torch


def segmentation_counts(pred: torch.Tensor, label: torch.Tensor, num_classes: int,
                        ignore_index: int = 255) -> torch.Tensor:
    """``(3, num_classes)`` int64 counts: intersection, union and label area per class (mmseg's IoU statistics)."""
    valid = label != ignore_index
    pred, label = pred[valid], label[valid]
    inter = torch.bincount(label[pred == label], minlength=num_classes)[:num_classes]
    area_pred = torch.bincount(pred, minlength=num_classes)[:num_classes]
    area_label = torch.bincount(label, minlength=num_classes)[:num_classes]
    return torch.stack([inter, area_pred + area_label - inter, area_label]).long()


def miou_and_accuracy(counts: torch.Tensor) -> Dict[str, float]:
    """mIoU (mean over classes present in prediction or label) and pixel accuracy, in percent."""
    inter, union, area_label = counts.double()
    present = union > 0
    miou = (inter[present] / union[present]).mean().item() if present.any() else float('nan')
    acc = (inter.sum() / area_label.sum()).item() if area_label.sum() > 0 else float('nan')
    return {'mIoU': 100 * miou, 'aAcc': 100 * acc}
