"""The feature figure of the paper: image, low-res features and each upsampler's output on one PCA basis, plus
attention maps of query points for attention-based upsamplers (JAFAR, AnyUp)."""
import time
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from PIL import Image
from torch import nn

from mmjafar.utils.normalization import IMAGENET_MEAN, IMAGENET_STD
from .panels import draw_marker, fit_font_size, overlay_heatmap, save_panel_grid
from .pca import pca_rgb

Point = Tuple[float, float]


def load_guidance_image(path: str, size: int, multiple: int = 1) -> Tuple[np.ndarray, torch.Tensor]:
    """Read an image, resize its shorter side to ``size`` (aspect kept) and center-crop both sides down to
    multiples of ``multiple`` (the backbone's patch size). Returns the uint8 ``(H, W, 3)`` pixels and the
    ImageNet-normalised ``(1, 3, H, W)`` tensor."""
    with Image.open(path) as img:
        img = img.convert('RGB')
    w, h = img.size
    scale = size / min(w, h)
    new_w, new_h = max(multiple, round(w * scale)), max(multiple, round(h * scale))
    img = img.resize((new_w, new_h), Image.BICUBIC)
    crop_w, crop_h = new_w - new_w % multiple, new_h - new_h % multiple
    left, top = (new_w - crop_w) // 2, (new_h - crop_h) // 2
    pixels = np.asarray(img.crop((left, top, left + crop_w, top + crop_h)), dtype=np.uint8).copy()
    tensor = torch.from_numpy(pixels).permute(2, 0, 1).float().div(255)
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    return pixels, ((tensor - mean) / std).unsqueeze(0)


def attention_query_size(output_size: Tuple[int, int], grid: Tuple[int, int],
                         max_elements: int = 1 << 24) -> Tuple[int, int]:
    """Largest query grid, in the proportions of ``output_size`` and not above it, whose full attention matrix
    against the ``grid`` keys has at most ``max_elements`` entries (the maps are materialised)."""
    height, width = output_size
    keys = grid[0] * grid[1]
    scale = min(1.0, (max_elements / (height * width * keys)) ** 0.5)
    return max(1, int(height * scale)), max(1, int(width * scale))


@torch.no_grad()
def query_attention(upsampler: nn.Module, image: torch.Tensor, features: torch.Tensor,
                    output_size: Tuple[int, int], points: Sequence[Point],
                    max_elements: int = 1 << 24) -> np.ndarray:
    """Head-averaged attention over the feature grid of each query point, ``(P, h, w)``.

    ``points`` are ``(x, y)`` fractions of the output width and height. The upsampler's ``attention_maps`` is
    evaluated on a query grid of the output's proportions small enough to materialise
    (:func:`attention_query_size`); a point reads the row of the query cell it falls in.
    """
    if not hasattr(upsampler, 'attention_maps'):
        raise TypeError(f'{type(upsampler).__name__} has no attention_maps(image, features, output_size)')
    grid = tuple(features.shape[-2:])
    q_h, q_w = attention_query_size(output_size, grid, max_elements)
    weights = upsampler.attention_maps(image, features, (q_h, q_w))[0]
    rows = []
    for x, y in points:
        row = min(q_h - 1, int(y * q_h)) * q_w + min(q_w - 1, int(x * q_w))
        rows.append(weights[row].float().reshape(grid).cpu().numpy())
    return np.stack(rows) if rows else np.zeros((0, *grid), dtype=np.float32)


def parse_points(text: Optional[str]) -> List[Point]:
    """'0.5,0.5 0.2,0.7' -> [(0.5, 0.5), (0.2, 0.7)]: ``x,y`` fractions of width and height in [0, 1]."""
    points = []
    for item in (text or '').replace(';', ' ').split():
        try:
            x, y = (float(v) for v in item.split(','))
        except ValueError as err:
            raise ValueError(f'query point {item!r} must be "x,y" fractions of width and height, e.g. 0.5,0.4') \
                from err
        if not (0 <= x <= 1 and 0 <= y <= 1):
            raise ValueError(f'query point {item!r} must lie in [0, 1] x [0, 1] (fractions of width and height)')
        points.append((x, y))
    return points


@torch.no_grad()
def feature_figure(pixels: np.ndarray, image: torch.Tensor, features: torch.Tensor,
                   upsamplers: Dict[str, nn.Module], path: str, output_size: Optional[Tuple[int, int]] = None,
                   points: Sequence[Point] = (), feature_name: str = 'features') -> Dict[str, float]:
    """Render and save the figure; returns each upsampler's run time in seconds.

    Row 1: the image, the low-res ``features`` and every upsampler's output at ``output_size`` (default: the image
    size), all coloured by one 3-component PCA basis fitted on the low-res features. Then one row per query point:
    the image with the point marked, then each attention-based upsampler's attention over the feature grid for
    that point (heat map on the image, red = most weight).

    Args:
        pixels: uint8 ``(H, W, 3)`` image, as shown.
        image: its ImageNet-normalised ``(1, 3, H, W)`` tensor (the guidance).
        features: low-res ``(1, C, h, w)`` backbone features.
        upsamplers: display name -> module called as ``module(image, features, output_size)``.
        path: PNG path.
        points: ``(x, y)`` query points as fractions of width and height.
        feature_name: what the features are (e.g. the backbone name), for the header.
    """
    if features.shape[0] != 1 or image.shape[0] != 1:
        raise ValueError('feature_figure draws one image: pass batches of size 1')
    out_size = tuple(output_size) if output_size is not None else tuple(image.shape[-2:])
    img_h, img_w = image.shape[-2:]
    if abs(out_size[0] * img_w - out_size[1] * img_h) > max(img_h, img_w):  # more than a rounding pixel
        raise ValueError(f'output_size {out_size} has another aspect ratio than the {img_h}x{img_w} image; the '
                         'panels would be squashed. Scale both sides by the same factor.')
    outputs, seconds = {}, {}
    for name, module in upsamplers.items():
        start = time.perf_counter()
        outputs[name] = module(image, features, out_size)[0].float()
        seconds[name] = time.perf_counter() - start
    grid = tuple(features.shape[-2:])
    shown = pixels
    if pixels.shape[:2] != out_size:  # show the image at the output size (same scale as the feature panels)
        shown = np.asarray(Image.fromarray(pixels).resize((out_size[1], out_size[0]), Image.BICUBIC))
    maps = pca_rgb([features[0].float()] + list(outputs.values()), fit_index=0, size=out_size)
    size_txt = f'{out_size[0]}x{out_size[1]}'
    top_titles = [f'image {pixels.shape[0]}x{pixels.shape[1]}', f'low-res {grid[0]}x{grid[1]}'] + \
        [f'{name} {size_txt}' for name in outputs]
    rows, titles = [[shown] + maps], [top_titles]
    attentive = [name for name, m in upsamplers.items() if hasattr(m, 'attention_maps')]
    if points and attentive:
        attention = {name: query_attention(upsamplers[name], image, features, out_size, points)
                     for name in attentive}
        for p, (x, y) in enumerate(points):
            xy = (x * (out_size[1] - 1), y * (out_size[0] - 1))
            row, names = [draw_marker(shown, xy)], [f'query {p + 1} at ({x:.2f}, {y:.2f})']
            for name in attentive:
                row.append(draw_marker(overlay_heatmap(shown, attention[name][p]), xy))
                names.append(f'{name} attention of query {p + 1} over {grid[0]}x{grid[1]}')
            rows.append(row)
            titles.append(names)
    longest = max(len(t) for r in titles for t in r)
    font = fit_font_size([p.shape[1] for r in rows for p in r if p is not None], longest)
    header = (f'{feature_name}: {grid[0]}x{grid[1]} features upsampled to {size_txt}; colours: one 3-component '
              'PCA basis fitted on the low-res features, shared by all panels')
    if len(rows) > 1:
        header += '; attention: dark blue = none, red = most weight'
    save_panel_grid(rows, titles, path, header=header, font_size=font)
    return seconds
