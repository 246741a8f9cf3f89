"""Figure building blocks (numpy and Pillow only): heat-map overlays, query markers and titled panel grids."""
from typing import List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image, ImageDraw, ImageFont

#: anchor colours of the heat-map scale, low to high (dark blue, blue, cyan, yellow, red).
_HEAT_ANCHORS = np.array([[0, 0, 64], [0, 64, 255], [0, 220, 220], [255, 230, 0], [220, 20, 0]], dtype=np.float64)


def heat_colors(values: np.ndarray) -> np.ndarray:
    """Values in [0, 1] (any shape) -> uint8 RGB colours ``(..., 3)`` on a blue-cyan-yellow-red scale."""
    v = np.clip(np.asarray(values, dtype=np.float64), 0, 1) * (len(_HEAT_ANCHORS) - 1)
    low = np.minimum(np.floor(v).astype(int), len(_HEAT_ANCHORS) - 2)
    frac = (v - low)[..., None]
    rgb = (1 - frac) * _HEAT_ANCHORS[low] + frac * _HEAT_ANCHORS[low + 1]
    return np.round(rgb).astype(np.uint8)


def overlay_heatmap(image: np.ndarray, values: np.ndarray, alpha: float = 0.55) -> np.ndarray:
    """Blend a heat map over an ``(H, W, 3)`` uint8 image.

    ``values`` ``(h, w)`` are min-max scaled and resized to the image with nearest neighbours when their grid
    divides the image (each cell stays a visible block), bilinearly otherwise.
    """
    values = np.asarray(values, dtype=np.float64)
    span = values.max() - values.min()
    values = (values - values.min()) / span if span > 0 else np.zeros_like(values)
    height, width = image.shape[:2]
    if values.shape != (height, width):
        exact = height % values.shape[0] == 0 and width % values.shape[1] == 0
        resized = Image.fromarray((values * 65535).astype(np.uint16)).resize(
            (width, height), Image.NEAREST if exact else Image.BILINEAR)
        values = np.asarray(resized, dtype=np.float64) / 65535
    heat = heat_colors(values).astype(np.float64)
    return np.round((1 - alpha) * image.astype(np.float64) + alpha * heat).astype(np.uint8)


def draw_marker(image: np.ndarray, xy: Tuple[float, float], radius: int = 7) -> np.ndarray:
    """Copy of ``image`` with a white-ringed black cross at pixel ``xy = (x, y)`` (a query point)."""
    canvas = Image.fromarray(image)
    draw = ImageDraw.Draw(canvas)
    x, y = xy
    draw.ellipse([x - radius, y - radius, x + radius, y + radius], outline='white', width=3)
    draw.ellipse([x - radius, y - radius, x + radius, y + radius], outline='black', width=1)
    draw.line([x - radius + 2, y, x + radius - 2, y], fill='black', width=2)
    draw.line([x, y - radius + 2, x, y + radius - 2], fill='black', width=2)
    return np.asarray(canvas)


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)  # scalable font (Pillow >= 10.1 with FreeType)
    except (TypeError, OSError):  # pragma: no cover - older Pillow or no FreeType: the small bitmap font
        return ImageFont.load_default()


def save_panel_grid(rows: Sequence[Sequence[Optional[np.ndarray]]], titles: Sequence[Sequence[str]], path: str,
                    header: Optional[str] = None, title_height: int = 18, gap: int = 4,
                    font_size: Optional[int] = None) -> Image.Image:
    """Save rows of ``(H, W, 3)`` uint8 panels, each with a caption above it, as one PNG at ``path``.

    Panels keep their own size (never stretched); ``None`` leaves a cell empty. Columns are as wide as their
    widest panel, rows as tall as their tallest one. ``header`` adds a line of text on top. Returns the image.
    """
    if len(rows) != len(titles) or any(len(r) != len(t) for r, t in zip(rows, titles)):
        raise ValueError('save_panel_grid: every panel needs a title (rows and titles must have the same shape)')
    font = _font(font_size) if font_size else None
    if font is not None:
        title_height = max(title_height, font_size + 8)
    ncols = max(len(r) for r in rows)
    col_w = [max((r[c].shape[1] for r in rows if c < len(r) and r[c] is not None), default=0) for c in range(ncols)]
    row_h = [max((p.shape[0] for p in r if p is not None), default=0) for r in rows]
    top = title_height if header else 0
    width = sum(col_w) + gap * (ncols - 1)
    height = top + sum(h + title_height for h in row_h) + gap * (len(rows) - 1)
    canvas = Image.new('RGB', (max(width, 1), max(height, 1)), 'white')
    draw = ImageDraw.Draw(canvas)
    if header:
        draw.text((4, 3), header, fill='black', font=font)
    y = top
    for panels, names, h in zip(rows, titles, row_h):
        x = 0
        for c, (panel, name) in enumerate(zip(panels, names)):
            if panel is not None:
                canvas.paste(Image.fromarray(panel), (x, y + title_height))
                draw.text((x + 4, y + 3), name, fill='black', font=font)
            x += col_w[c] + gap
        y += h + title_height + gap
    canvas.save(path)
    return canvas


def fit_font_size(widths: List[int], longest_title: int, largest: int = 22, smallest: int = 11) -> int:
    """A caption font size (pixels) at which ``longest_title`` characters fit the narrowest panel."""
    if not widths or longest_title <= 0:
        return largest
    size = int(min(widths) / (0.55 * longest_title))
    return max(smallest, min(largest, size))
