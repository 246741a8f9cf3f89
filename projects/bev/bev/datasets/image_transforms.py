"""Multi-view image loading and the per-camera affine augmentation (design brief §1).

Pixel convention (shared with ``geometry.project_to_cameras`` and ``cv2.warpAffine``): pixel centres sit at
integer coordinates. Resizing by ``s`` maps ``u -> s (u + 0.5) - 0.5``. Every image operation is one 3×3 affine
``A`` (original pixels -> new pixels); the intrinsics follow as ``K' = A K`` so a 3-D point keeps projecting onto
the same image content.
"""
from typing import List, Sequence, Tuple

import cv2
import numpy as np
from mmcv.transforms import BaseTransform
from PIL import Image

from mmjafar.registry import TRANSFORMS

_REDUCED_FLAGS = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4,
                  8: cv2.IMREAD_REDUCED_COLOR_8}


def resize_affine(scale_x: float, scale_y: float) -> np.ndarray:
    """3×3 affine of a resize by ``(scale_x, scale_y)`` under the pixel-centre convention."""
    return np.array([[scale_x, 0.0, 0.5 * scale_x - 0.5], [0.0, scale_y, 0.5 * scale_y - 0.5], [0.0, 0.0, 1.0]])


def translate_affine(dx: float, dy: float) -> np.ndarray:
    return np.array([[1.0, 0.0, dx], [0.0, 1.0, dy], [0.0, 0.0, 1.0]])


def zoom_rotate_affine(zoom: float, angle_deg: float, center: Tuple[float, float]) -> np.ndarray:
    """Zoom by ``zoom`` and rotate by ``angle_deg`` (counter-clockwise on screen) about ``center`` (u, v)."""
    theta = np.deg2rad(angle_deg)
    c, s = zoom * np.cos(theta), zoom * np.sin(theta)
    rot = np.array([[c, s, 0.0], [-s, c, 0.0], [0.0, 0.0, 1.0]])
    return translate_affine(*center) @ rot @ translate_affine(-center[0], -center[1])


@TRANSFORMS.register_module()
class LoadMultiViewImages(BaseTransform):
    """Read the N camera images of a sample as RGB uint8 and adapt the intrinsics to the decoded size.

    Required keys: ``img_paths``, ``cam2img`` (N, 3, 3). Added/updated: ``imgs`` (list of (H, W, 3) RGB uint8),
    ``ori_shapes`` (full-resolution (H, W) per camera, read from the file header), ``img_shapes`` (decoded
    sizes), ``cam2img`` (intrinsics of the decoded images), ``ori_cam2img`` (the dataset's intrinsics).

    Args:
        decode_reduction: 1 (full size) or 2, 4, 8: decode JPEGs at 1/r size directly
            (``cv2.IMREAD_REDUCED_COLOR_r``, much cheaper than decoding then resizing; the brief's advice for
            trainval, where decoding dominates loading). The real decoded size is used for the intrinsics.
    """

    def __init__(self, decode_reduction: int = 1) -> None:
        if decode_reduction not in _REDUCED_FLAGS:
            raise ValueError(f'LoadMultiViewImages: decode_reduction must be one of {sorted(_REDUCED_FLAGS)}, '
                             f'got {decode_reduction}')
        self.decode_reduction = int(decode_reduction)

    def transform(self, results: dict) -> dict:
        paths = results['img_paths']
        cam2img = np.asarray(results['cam2img'], dtype=np.float64)
        if len(paths) != len(cam2img):
            raise ValueError(f'LoadMultiViewImages: {len(paths)} image paths but {len(cam2img)} intrinsics')
        imgs, ori_shapes, shapes, new_k = [], [], [], []
        for path, k in zip(paths, cam2img):
            img = cv2.imread(path, _REDUCED_FLAGS[self.decode_reduction])
            if img is None:
                raise FileNotFoundError(f'LoadMultiViewImages: cannot read image {path!r} (missing or not an '
                                        'image); check data_root and the dataset files')
            with Image.open(path) as header:  # header only: the full-resolution size
                width, height = header.size
            imgs.append(np.ascontiguousarray(img[..., ::-1]))
            ori_shapes.append((height, width))
            shapes.append(img.shape[:2])
            new_k.append(resize_affine(img.shape[1] / width, img.shape[0] / height) @ k)
        results['imgs'] = imgs
        results['ori_shapes'] = ori_shapes
        results['img_shapes'] = shapes
        results['ori_cam2img'] = cam2img.astype(np.float32)
        results['cam2img'] = np.stack(new_k).astype(np.float32)
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(decode_reduction={self.decode_reduction})'


@TRANSFORMS.register_module()
class MultiViewImageAffineAug(BaseTransform):
    """Resize, crop, zoom and rotate each camera image with one affine warp; ``K' = A K`` (PointBeV style).

    Per camera: resize by ``s = r · W_out / W_in`` (``r`` relative to the scale that fits the width), keep the
    bottom ``H_out`` rows (drop the top: ~17 % at 224×480 from 1600×900) and the horizontally centred ``W_out``
    columns, then zoom and rotate about the output centre. Training draws ``r``, zoom and angle per camera; test
    uses ``test_scale`` and no zoom or rotation. No flip.

    PointBeV at 224×480 from 1600×900: train scale U(0.294, 0.308) and val 0.301 of the full image, i.e.
    ``scale_range=(0.98, 1.0267)`` and ``test_scale=1.0033`` relative to the fitting scale 0.3.

    Required keys: ``imgs``, ``cam2img``. Updated: ``imgs`` (all ``final_size``), ``cam2img``; added:
    ``img_shape`` (H, W), ``img_aug_mats`` (N, 3, 3) the affines applied.

    Args:
        final_size: output ``(H, W)``, e.g. (224, 480) or (224, 476) (16×34 ViT-S/14 tokens).
        is_train: draw random parameters (train) or use the fixed test ones.
        scale_range: train range of ``r``.
        test_scale: ``r`` at test time.
        zoom_range: train zoom about the output centre.
        rotate_range: train rotation in degrees about the output centre.
    """

    def __init__(self, final_size: Sequence[int] = (224, 480), is_train: bool = True,
                 scale_range: Sequence[float] = (0.98, 1.0267), test_scale: float = 1.0033,
                 zoom_range: Sequence[float] = (0.95, 1.05), rotate_range: Sequence[float] = (-2.5, 2.5)) -> None:
        if len(final_size) != 2 or min(final_size) < 1:
            raise ValueError(f'MultiViewImageAffineAug: final_size must be (H, W) > 0, got {final_size}')
        for name, rng in (('scale_range', scale_range), ('zoom_range', zoom_range)):
            if len(rng) != 2 or not 0 < rng[0] <= rng[1]:
                raise ValueError(f'MultiViewImageAffineAug: {name} must be (low, high) with 0 < low <= high, '
                                 f'got {rng}')
        if len(rotate_range) != 2 or rotate_range[0] > rotate_range[1]:
            raise ValueError(f'MultiViewImageAffineAug: rotate_range must be (low, high), got {rotate_range}')
        if test_scale <= 0:
            raise ValueError(f'MultiViewImageAffineAug: test_scale must be positive, got {test_scale}')
        self.final_size = (int(final_size[0]), int(final_size[1]))
        self.is_train = bool(is_train)
        self.scale_range = tuple(float(v) for v in scale_range)
        self.test_scale = float(test_scale)
        self.zoom_range = tuple(float(v) for v in zoom_range)
        self.rotate_range = tuple(float(v) for v in rotate_range)

    def _sample(self) -> Tuple[float, float, float]:
        if not self.is_train:
            return self.test_scale, 1.0, 0.0
        return (float(np.random.uniform(*self.scale_range)), float(np.random.uniform(*self.zoom_range)),
                float(np.random.uniform(*self.rotate_range)))

    def augment(self, img: np.ndarray, ratio: float, zoom: float, angle: float) -> Tuple[np.ndarray, np.ndarray]:
        """Warp one (H, W, 3) image; returns ``(image, A)``."""
        out_h, out_w = self.final_size
        in_h, in_w = img.shape[:2]
        scale = ratio * out_w / in_w
        if scale < 1.0:
            # Shrink with area averaging first (no aliasing), using the realised per-axis scale.
            size = (max(1, int(round(in_w * scale))), max(1, int(round(in_h * scale))))
            img = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
            pre = resize_affine(size[0] / in_w, size[1] / in_h)
            rest_scale = 1.0
        else:
            pre, rest_scale = np.eye(3), scale
        resized = resize_affine(rest_scale, rest_scale)
        new_h = (pre @ resized)[1, 1] * in_h
        new_w = (pre @ resized)[0, 0] * in_w
        crop = translate_affine(-(new_w - out_w) / 2.0, -(new_h - out_h))
        center = ((out_w - 1) / 2.0, (out_h - 1) / 2.0)
        warp = zoom_rotate_affine(zoom, angle, center) @ crop @ resized
        out = cv2.warpAffine(img, warp[:2], (out_w, out_h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                             borderValue=(0, 0, 0))
        return out, warp @ pre

    def transform(self, results: dict) -> dict:
        imgs, mats = [], []
        for img in results['imgs']:
            out, mat = self.augment(img, *self._sample())
            imgs.append(out)
            mats.append(mat)
        mats = np.stack(mats)
        results['imgs'] = imgs
        results['cam2img'] = (mats @ np.asarray(results['cam2img'], dtype=np.float64)).astype(np.float32)
        results['img_aug_mats'] = mats.astype(np.float32)
        results['img_shape'] = self.final_size
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(final_size={self.final_size}, is_train={self.is_train}, '
                f'scale_range={self.scale_range}, test_scale={self.test_scale}, zoom_range={self.zoom_range}, '
                f'rotate_range={self.rotate_range})')


def stack_images(imgs: List[np.ndarray]) -> np.ndarray:
    """``(N, 3, H, W)`` uint8 from a list of ``(H, W, 3)`` images (all the same size)."""
    shapes = {im.shape for im in imgs}
    if len(shapes) != 1:
        raise ValueError(f'camera images differ in size {sorted(shapes)}; add MultiViewImageAffineAug to the '
                         'pipeline to bring them to one final_size')
    return np.ascontiguousarray(np.stack(imgs).transpose(0, 3, 1, 2))
