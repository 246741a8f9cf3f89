"""PCA renderings of feature maps (torch, numpy and Pillow only).

One PCA basis is fitted on a reference map and applied to every map of a figure, so that equal colours mean
similar features across panels (low-res, bilinear, JAFAR, ...).
"""
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from .panels import save_panel_grid


def fit_pca(features: torch.Tensor, n_components: int = 3) -> Tuple[torch.Tensor, torch.Tensor]:
    """Principal axes of ``features`` ``(N, C)`` -> ``(mean (C,), basis (C, n_components))``."""
    if features.dim() != 2 or features.shape[0] < 2:
        raise ValueError(f'fit_pca expects (N >= 2, C) samples, got {tuple(features.shape)}')
    features = features.float()
    mean = features.mean(0)
    # right singular vectors of the centred data; signs fixed so the largest loading is positive (stable colours)
    _, _, vh = torch.linalg.svd(features - mean, full_matrices=False)
    basis = vh[:n_components].T
    signs = torch.sign(basis.gather(0, basis.abs().argmax(0, keepdim=True)))
    return mean, basis * signs


def pca_rgb(maps: Sequence[torch.Tensor], fit_index: int = 0, size: Optional[Tuple[int, int]] = None,
            quantiles: Tuple[float, float] = (0.01, 0.99)) -> List[np.ndarray]:
    """Render ``(C, h, w)`` maps as ``(H, W, 3)`` uint8 images of their first three principal components.

    Args:
        maps: feature maps of one image (any grid sizes, same C).
        fit_index: the map the basis and the colour range are fitted on (e.g. the low-res features).
        size: display size; maps are shown with nearest-neighbour resizing (each feature stays a visible block).
        quantiles: colour range per component, from the fitted map's projections (clipped outside).
    """
    ref = maps[fit_index].flatten(1).T
    mean, basis = fit_pca(ref)
    proj = (ref.float() - mean) @ basis
    lo = torch.quantile(proj, quantiles[0], dim=0)
    hi = torch.quantile(proj, quantiles[1], dim=0)
    out = []
    for m in maps:
        c, h, w = m.shape
        rgb = ((m.flatten(1).T.float() - mean) @ basis - lo) / (hi - lo).clamp_min(1e-8)
        rgb = rgb.clamp(0, 1).T.reshape(3, h, w)
        if size is not None and (h, w) != tuple(size):
            rgb = F.interpolate(rgb[None], size=size, mode='nearest')[0]
        out.append((rgb.permute(1, 2, 0) * 255).round().byte().cpu().numpy())
    return out


def denormalize_image(image: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """Normalised ``(3, H, W)`` image (mean/std in 0-255 units) -> ``(H, W, 3)`` uint8."""
    mean_t = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32).view(3, 1, 1)
    pixels = (image.detach().float().cpu() * std_t + mean_t).clamp(0, 255)
    return pixels.round().byte().permute(1, 2, 0).numpy()


def save_panel_row(panels: Sequence[np.ndarray], titles: Sequence[str], path: str, title_height: int = 18,
                   gap: int = 4) -> None:
    """Save ``(H, W, 3)`` uint8 panels side by side with a caption above each as a PNG at ``path``."""
    if len(panels) != len(titles):
        raise ValueError(f'save_panel_row: {len(panels)} panels but {len(titles)} titles')
    save_panel_grid([panels], [titles], path, title_height=title_height, gap=gap)
