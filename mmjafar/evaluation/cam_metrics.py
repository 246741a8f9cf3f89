"""Faithfulness metrics of class activation maps (JAFAR appendix, after Chattopadhay et al., Poppi et al.).

Notation for one image ``x`` of class ``c``: ``Y`` is the classifier's softmax score of ``c`` on ``x``, ``O`` its
score on the masked image ``x * 1[CAM(x) > 0]``, ``CAM(x)`` the (non-negative) activation map and ``CAM(x')``
the map computed the same way on the masked image. Per image:

* Average Drop      ``max(0, Y - O) / Y``                       (lower is better)
* Average Increase  ``1[Y < O]``                                (higher is better)
* Average Gain      ``max(0, O - Y) / (1 - Y)``                 (higher is better)
* Coherency         ``(1 + pearson(CAM(x'), CAM(x))) / 2``     (higher is better)
* Complexity        ``||CAM(x)||_0 / #pixels`` (share of active pixels; lower is better)
* ADCC              harmonic mean of Coherency, ``1 - Complexity`` and ``1 - Average Drop`` (higher is better)

Dataset values are the means over images, reported in percent (``x 100``). Every function works on a batch:
tensors of shape ``(N,)`` for scores and ``(N, H, W)`` (or ``(N, P)``) for maps.
"""
from typing import Dict

import torch

#: the metric names, in the order of the JAFAR table.
CAM_METRICS = ('A.D', 'A.I', 'A.G', 'Coherency', 'Complexity', 'ADCC')


def _check_scores(full: torch.Tensor, masked: torch.Tensor) -> None:
    if full.shape != masked.shape or full.dim() != 1:
        raise ValueError(f'scores must be two (N,) tensors of the same shape, got {tuple(full.shape)} and '
                         f'{tuple(masked.shape)}')
    if ((full < 0) | (full > 1) | (masked < 0) | (masked > 1)).any():
        raise ValueError('scores must be softmax probabilities in [0, 1]; pass softmax(logits)[class], not logits')


def average_drop(full: torch.Tensor, masked: torch.Tensor) -> torch.Tensor:
    """Per-image relative drop ``max(0, Y - O) / Y`` in [0, 1]; ``(N,), (N,) -> (N,)``."""
    _check_scores(full, masked)
    return (full - masked).clamp_min(0) / full.clamp_min(torch.finfo(full.dtype).tiny)


def average_increase(full: torch.Tensor, masked: torch.Tensor) -> torch.Tensor:
    """Per-image indicator ``1[Y < O]`` (as float); ``(N,), (N,) -> (N,)``."""
    _check_scores(full, masked)
    return (full < masked).to(full.dtype)


def average_gain(full: torch.Tensor, masked: torch.Tensor) -> torch.Tensor:
    """Per-image relative gain ``max(0, O - Y) / (1 - Y)`` in [0, 1] (0 where ``Y = 1``); ``(N,), (N,) -> (N,)``."""
    _check_scores(full, masked)
    room = 1 - full
    gain = (masked - full).clamp_min(0) / room.clamp_min(torch.finfo(full.dtype).tiny)
    return torch.where(room > 0, gain, torch.zeros_like(gain))


def coherency(cam_masked: torch.Tensor, cam: torch.Tensor) -> torch.Tensor:
    """Per-image ``(1 + pearson(CAM(x'), CAM(x))) / 2`` in [0, 1]; ``(N, ...), (N, ...) -> (N,)``.

    A constant map has no correlation: the pair counts as 1 (fully coherent) when both maps are the same
    constant, and as 0.5 (uncorrelated) otherwise.
    """
    if cam_masked.shape != cam.shape:
        raise ValueError(f'coherency: maps differ in shape, {tuple(cam_masked.shape)} vs {tuple(cam.shape)}')
    a = cam_masked.flatten(1).double()
    b = cam.flatten(1).double()
    a = a - a.mean(1, keepdim=True)
    b = b - b.mean(1, keepdim=True)
    norm = a.norm(dim=1) * b.norm(dim=1)
    corr = (a * b).sum(1) / norm.clamp_min(1e-300)
    constant = norm == 0
    same = (cam_masked.flatten(1) == cam.flatten(1)).all(1)
    corr = torch.where(constant, torch.where(same, torch.ones_like(corr), torch.zeros_like(corr)), corr)
    return ((1 + corr.clamp(-1, 1)) / 2).to(cam.dtype)


def complexity(cam: torch.Tensor) -> torch.Tensor:
    """Per-image share of active pixels ``||CAM||_0 / #pixels`` in [0, 1]; ``(N, ...) -> (N,)``."""
    return (cam.flatten(1) > 0).to(cam.dtype if cam.is_floating_point() else torch.float32).mean(1)


def adcc(coh: torch.Tensor, comp: torch.Tensor, drop: torch.Tensor) -> torch.Tensor:
    """Per-image harmonic mean of ``coh``, ``1 - comp`` and ``1 - drop`` (all in [0, 1]); 0 where one term is 0."""
    terms = torch.stack([coh, 1 - comp, 1 - drop])
    if ((terms < -1e-6) | (terms > 1 + 1e-6)).any():
        raise ValueError('adcc expects coherency, complexity and average drop as fractions in [0, 1]')
    terms = terms.clamp(0, 1)
    inverse = (1 / terms.clamp_min(torch.finfo(terms.dtype).tiny)).sum(0)
    return torch.where((terms > 0).all(0), 3 / inverse, torch.zeros_like(inverse))


def cam_metrics_per_image(full: torch.Tensor, masked: torch.Tensor, cam: torch.Tensor,
                          cam_masked: torch.Tensor) -> Dict[str, torch.Tensor]:
    """All six per-image values (fractions in [0, 1]) of a batch, keyed by :data:`CAM_METRICS`.

    Args:
        full: ``(N,)`` softmax score of the explained class on the image.
        masked: ``(N,)`` softmax score of that class on ``x * 1[CAM > 0]``.
        cam: ``(N, H, W)`` non-negative activation maps of the images.
        cam_masked: ``(N, H, W)`` activation maps of the masked images (same class).
    """
    if cam.shape[0] != full.shape[0]:
        raise ValueError(f'{cam.shape[0]} maps for {full.shape[0]} scores')
    drop = average_drop(full, masked)
    coh = coherency(cam_masked, cam)
    comp = complexity(cam)
    return {'A.D': drop, 'A.I': average_increase(full, masked), 'A.G': average_gain(full, masked),
            'Coherency': coh, 'Complexity': comp, 'ADCC': adcc(coh, comp, drop)}


def summarize_cam_metrics(per_image: Dict[str, torch.Tensor]) -> Dict[str, float]:
    """Dataset means in percent of per-image values (``{name: (N,)}``), plus ``num_images``."""
    counts = {len(v) for v in per_image.values()}
    if len(counts) != 1:
        raise ValueError(f'per-image metric lists differ in length: {counts}')
    count = counts.pop()
    if count == 0:
        raise ValueError('no image to summarize (no correctly classified image was evaluated)')
    out = {name: 100 * per_image[name].double().mean().item() for name in CAM_METRICS}
    out['num_images'] = count
    return out
