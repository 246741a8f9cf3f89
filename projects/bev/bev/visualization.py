"""PNG of one BEV sample: the six camera images, the GT vehicle mask and (optionally) the predicted mask.

Layout: cameras in two rows (front-left, front, front-right / back-left, back, back-right), then the GT BEV and
the prediction side by side. BEV panels show the ego frame with forward up and left to the left (row 0 = front,
column 0 = left), the ego vehicle as a small cyan box at the centre.

* GT panel: vehicles white; vehicles masked out by ``min_visibility`` (``valid`` False) grey.
* Prediction panel: probability as grey levels, and where thresholded predictions meet the GT: TP green,
  FP red, FN blue (only on valid cells; invalid cells dimmed).
"""
from typing import Optional, Sequence

import cv2
import numpy as np

from .geometry import CAMERA_NAMES

TP_COLOR, FP_COLOR, FN_COLOR = (40, 200, 40), (220, 40, 40), (40, 90, 230)
EGO_COLOR = (0, 220, 220)


def _to_hwc_list(imgs) -> list:
    """``(N, 3, H, W)`` tensor/array or a list of ``(H, W, 3)`` arrays -> list of uint8 RGB ``(H, W, 3)``."""
    if isinstance(imgs, (list, tuple)):
        return [np.asarray(im, dtype=np.uint8) for im in imgs]
    arr = imgs.detach().cpu().numpy() if hasattr(imgs, 'detach') else np.asarray(imgs)
    if arr.ndim != 4 or arr.shape[1] != 3:
        raise ValueError(f'camera images must be (N, 3, H, W) or a list of (H, W, 3), got {arr.shape}')
    return [np.ascontiguousarray(im.transpose(1, 2, 0)).astype(np.uint8) for im in arr]


def _to_map(x) -> Optional[np.ndarray]:
    if x is None:
        return None
    arr = x.detach().cpu().numpy() if hasattr(x, 'detach') else np.asarray(x)
    arr = np.squeeze(arr)
    if arr.ndim != 2:
        raise ValueError(f'BEV maps must be (R, C) or (1, R, C), got {np.shape(x)}')
    return arr


def _label(img: np.ndarray, text: str) -> None:
    scale = max(0.35, img.shape[1] / 700)
    cv2.putText(img, text, (4, int(14 * scale / 0.45)), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(img, text, (4, int(14 * scale / 0.45)), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1,
                cv2.LINE_AA)


def _ego_box(panel: np.ndarray) -> None:
    h, w = panel.shape[:2]
    cv2.rectangle(panel, (int(w * 0.49), int(h * 0.48)), (int(w * 0.51), int(h * 0.52)), EGO_COLOR, -1)


def gt_panel(seg: np.ndarray, valid: Optional[np.ndarray] = None) -> np.ndarray:
    """``(R, C, 3)`` uint8: vehicles white, invalid vehicle cells grey, background dark."""
    seg = seg.astype(bool)
    valid = np.ones_like(seg) if valid is None else valid.astype(bool)
    panel = np.full((*seg.shape, 3), 30, dtype=np.uint8)
    panel[seg & valid] = 255
    panel[seg & ~valid] = 120
    panel[~seg & ~valid] = 70
    return panel


def pred_panel(prob: np.ndarray, seg: Optional[np.ndarray] = None, valid: Optional[np.ndarray] = None,
               threshold: float = 0.5) -> np.ndarray:
    """``(R, C, 3)`` uint8: probabilities as grey levels; with a GT, TP green / FP red / FN blue."""
    prob = np.clip(prob.astype(np.float32), 0.0, 1.0)
    panel = np.repeat((30 + 160 * prob)[..., None], 3, axis=2).astype(np.uint8)
    if seg is not None:
        seg = seg.astype(bool)
        valid = np.ones_like(seg) if valid is None else valid.astype(bool)
        pos = prob >= threshold
        panel[pos & seg & valid] = TP_COLOR
        panel[pos & ~seg & valid] = FP_COLOR
        panel[~pos & seg & valid] = FN_COLOR
        panel[~valid] = (panel[~valid] * 0.4).astype(np.uint8)
    return panel


def render_bev_sample(imgs, gt_seg=None, gt_valid=None, pred_seg=None, cam_names: Sequence[str] = CAMERA_NAMES,
                      tile_width: int = 320, title: str = '', threshold: float = 0.5) -> np.ndarray:
    """Compose the figure as an RGB ``(H, W, 3)`` uint8 array.

    Args:
        imgs: the camera images, ``(N, 3, H, W)`` (as packed) or a list of ``(H, W, 3)`` RGB.
        gt_seg, gt_valid: GT vehicle mask and valid mask, ``(R, C)`` or ``(1, R, C)``; optional.
        pred_seg: predicted probabilities ``(R, C)`` or ``(1, R, C)``; optional.
        cam_names: names written on the camera tiles.
        tile_width: width of one camera tile in the figure (pixels).
        title: text on the GT panel (e.g. the sample token).
        threshold: probability threshold of the TP/FP/FN colouring.
    """
    views = _to_hwc_list(imgs)
    if not views:
        raise ValueError('render_bev_sample: no camera images')
    gt_seg, gt_valid, pred_seg = _to_map(gt_seg), _to_map(gt_valid), _to_map(pred_seg)
    height, width = views[0].shape[:2]
    tile_h = max(1, int(round(tile_width * height / width)))
    tiles = []
    for index, view in enumerate(views):
        tile = cv2.resize(view, (tile_width, tile_h), interpolation=cv2.INTER_LINEAR)
        _label(tile, cam_names[index] if index < len(cam_names) else f'cam {index}')
        tiles.append(tile)
    per_row = (len(tiles) + 1) // 2 if len(tiles) > 1 else 1
    tiles += [np.zeros_like(tiles[0])] * (2 * per_row - len(tiles)) if len(tiles) > 1 else []
    rows = [np.concatenate(tiles[r * per_row:(r + 1) * per_row], axis=1) for r in range(len(tiles) // per_row)]
    cams = np.concatenate(rows, axis=0)
    side = cams.shape[0]
    panels = []
    if gt_seg is not None:
        panel = cv2.resize(gt_panel(gt_seg, gt_valid), (side, side), interpolation=cv2.INTER_NEAREST)
        _ego_box(panel)
        _label(panel, f'GT {title}'.strip())
        panels.append(panel)
    if pred_seg is not None:
        panel = cv2.resize(pred_panel(pred_seg, gt_seg, gt_valid, threshold), (side, side),
                           interpolation=cv2.INTER_NEAREST)
        _ego_box(panel)
        _label(panel, 'prediction (TP green, FP red, FN blue)' if gt_seg is not None else 'prediction')
        panels.append(panel)
    separator = np.full((side, 4, 3), 255, dtype=np.uint8)
    parts = [cams]
    for panel in panels:
        parts += [separator, panel]
    return np.concatenate(parts, axis=1)


def save_bev_visualization(path: str, *args, **kwargs) -> np.ndarray:
    """``render_bev_sample(*args, **kwargs)`` written to ``path`` (PNG); returns the RGB figure."""
    figure = render_bev_sample(*args, **kwargs)
    if not cv2.imwrite(str(path), figure[..., ::-1]):
        raise OSError(f'save_bev_visualization: could not write {path!r} (does its folder exist?)')
    return figure
