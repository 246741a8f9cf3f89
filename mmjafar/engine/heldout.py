"""Held-out evaluation of a pretrained upsampler: how well it recovers the backbone's own high-res features."""
from typing import Dict, List, Sequence, Tuple

import torch
import torch.nn.functional as F

from mmjafar.models.pretrain import UpsamplerPretrainer
from mmjafar.visualization import denormalize_image, pca_rgb, save_panel_row

#: the baselines every learned upsampler is compared with.
BASELINES = ('bilinear', 'nearest')


def feature_errors(pred: torch.Tensor, target: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Per-image ``(1 - cos, L2)`` between ``(B, C, H, W)`` maps, each averaged over pixels -> two ``(B,)``.

    ``1 - cos`` is taken along channels; L2 is the Euclidean distance of the feature vectors at each pixel.
    """
    pred, target = pred.float(), target.float()
    cos_err = (1 - F.cosine_similarity(pred, target, dim=1, eps=1e-8)).flatten(1).mean(1)
    l2 = (pred - target).norm(dim=1).flatten(1).mean(1)
    return cos_err, l2


@torch.no_grad()
def heldout_errors(model: UpsamplerPretrainer, images: torch.Tensor, scales: Sequence[int] = (2, 4),
                   batch_size: int = 4) -> Dict[str, Dict[int, Dict[str, float]]]:
    """Mean errors of the upsampler and the baselines at recovering ``F_hr = backbone(images)``.

    For each factor k in ``scales``, ``F_lr = backbone(resize(images, S/k))`` (sizes rounded to the patch
    multiple, as in training) is upsampled to the grid of ``F_hr`` by the model's upsampler (guided by the image
    prepared as in training), bilinear and nearest interpolation.

    Args:
        model: the pretraining model (its backbone, upsampler and guidance rule are used).
        images: normalised ``(N, 3, S, S)`` held-out images.
        scales: downsampling factors.
        batch_size: images per forward pass.

    Returns:
        ``{method: {k: {'cos': mean 1 - cos, 'l2': mean L2}}}`` for 'upsampler', 'bilinear', 'nearest'.
    """
    was_training = model.training
    model.eval()
    sums = {m: {k: torch.zeros(2, dtype=torch.float64) for k in scales} for m in ('upsampler', ) + BASELINES}
    try:
        for batch in images.split(batch_size):
            target = model.extract(batch)
            grid = tuple(target.shape[-2:])
            guidance = model.guidance(batch)
            for k in scales:
                small = F.interpolate(batch, size=model.lowres_size(tuple(batch.shape[-2:]), k), mode='bilinear',
                                      align_corners=False)
                lowres = model.extract(small)
                preds = dict(upsampler=model.upsampler(guidance, lowres, grid),
                             bilinear=F.interpolate(lowres, size=grid, mode='bilinear', align_corners=False),
                             nearest=F.interpolate(lowres, size=grid, mode='nearest'))
                for method, pred in preds.items():
                    cos_err, l2 = feature_errors(pred, target)
                    sums[method][k] += torch.stack([cos_err.sum(), l2.sum()]).double().cpu()
    finally:
        model.train(was_training)
    n = images.shape[0]
    return {m: {k: dict(cos=float(v[0] / n), l2=float(v[1] / n)) for k, v in per.items()} for m, per in sums.items()}


def format_errors_table(errors: Dict[str, Dict[int, Dict[str, float]]], name: str = 'JAFAR') -> str:
    """The held-out table as text: one row per method, ``1-cos`` and ``L2`` columns per scale, and the
    relative improvement of the upsampler over bilinear."""
    scales = list(next(iter(errors.values())))
    header = f'{"method":<10}' + ''.join(f'{f"1-cos @{k}x":>12}{f"L2 @{k}x":>10}' for k in scales)
    lines = [header, '-' * len(header)]
    for method, per in errors.items():
        label = name if method == 'upsampler' else method
        lines.append(f'{label:<10}' + ''.join(f'{per[k]["cos"]:>12.4f}{per[k]["l2"]:>10.3f}' for k in scales))
    gains = []
    for k in scales:
        up, bl = errors['upsampler'][k], errors['bilinear'][k]
        gains.append(f'{k}x: 1-cos {100 * (1 - up["cos"] / bl["cos"]):+.1f}%, L2 {100 * (1 - up["l2"] / bl["l2"]):+.1f}%')
    lines.append(f'{name} error reduction vs bilinear (positive = {name} better): ' + '; '.join(gains))
    return '\n'.join(lines)


@torch.no_grad()
def save_pca_figure(model: UpsamplerPretrainer, image: torch.Tensor, path: str) -> List[str]:
    """PNG of ``[image | low-res features | bilinear | upsampler]`` (PCA colours fitted on the low-res map).

    ``image`` is one normalised ``(3, S, S)`` image; the features are those of the backbone at S (grid S/p),
    upsampled to S x S by bilinear interpolation and by the upsampler guided by the full-resolution image.
    Returns the panel titles.
    """
    was_training = model.training
    model.eval()
    try:
        batch = image[None]
        size = tuple(batch.shape[-2:])
        lowres = model.extract(batch)
        bilinear = F.interpolate(lowres, size=size, mode='bilinear', align_corners=False)
        upsampled = model.upsampler(batch, lowres, size)
    finally:
        model.train(was_training)
    panels = pca_rgb([lowres[0], bilinear[0], upsampled[0]], fit_index=0, size=size)
    stats = model.data_preprocessor
    mean = getattr(stats, 'mean', None)
    std = getattr(stats, 'std', None)
    mean = mean.flatten().tolist() if mean is not None else [0.0, 0.0, 0.0]
    std = std.flatten().tolist() if std is not None else [1.0, 1.0, 1.0]
    grid = 'x'.join(str(s) for s in lowres.shape[-2:])
    titles = [f'image {size[0]}x{size[1]}', f'low-res {grid}', 'bilinear', type(model.upsampler).__name__]
    save_panel_row([denormalize_image(image, mean, std)] + panels, titles, path)
    return titles
