"""Unlabelled image datasets for task-agnostic upsampler pretraining (torch, numpy and Pillow only).

Every sample is ``dict(inputs=uint8 tensor (3, S, S))`` with ``S = img_size``: the image as
RGB, resized so that its shorter side is ``S`` and center-cropped (or, with ``random_crop_scale``, a random
square crop of that area fraction resized to ``S``). Normalisation happens in the model's data preprocessor.
"""
import os
import os.path as osp
import random
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from mmengine.logging import print_log
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from mmjafar.registry import DATASETS

IMG_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.ppm', '.bmp', '.pgm', '.tif', '.tiff', '.webp', '.JPEG')
_VERIFY_MODES = ('header', 'decode', 'none')


def central_square(width: int, height: int) -> Tuple[int, int, int, int]:
    """``(left, top, right, bottom)`` of the largest central square of a ``width x height`` image."""
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    return left, top, left + side, top + side


def square_crop_to_tensor(img: Image.Image, img_size: int,
                          random_crop_scale: Optional[Tuple[float, float]] = None,
                          rng: Optional[random.Random] = None) -> torch.Tensor:
    """RGB PIL image -> ``(3, img_size, img_size)`` uint8 tensor (shorter-side resize + square crop).

    Args:
        img: any PIL image (converted to RGB; grayscale and RGBA images work).
        img_size: output side length.
        random_crop_scale: ``(lo, hi)`` fractions of the shorter side's square area; a random square crop of a
            random area fraction in this range at a random position. None: the central square.
        rng: random source of the crop (default: Python's global ``random``, seeded per worker by mmengine).
    """
    img = img.convert('RGB')
    w, h = img.size
    if random_crop_scale is None:
        box = central_square(w, h)
    else:
        rng = rng or random
        lo, hi = random_crop_scale
        side = max(1, int(round(min(w, h) * rng.uniform(lo, hi) ** 0.5)))
        left, top = rng.randint(0, w - side), rng.randint(0, h - side)
        box = (left, top, left + side, top + side)
    img = img.resize((img_size, img_size), Image.BICUBIC, box=box)
    return torch.from_numpy(np.asarray(img, dtype=np.uint8).copy()).permute(2, 0, 1).contiguous()


class _SquareImageDataset(Dataset):
    """Shared sample logic: subclasses provide ``__len__`` and ``load_image(index) -> PIL.Image``."""

    def __init__(self, img_size: int, random_crop_scale: Optional[Sequence[float]], max_retries: int) -> None:
        if not isinstance(img_size, int) or img_size <= 0:
            raise ValueError(f'img_size must be a positive int, got {img_size!r}')
        if random_crop_scale is not None:
            lo, hi = (float(v) for v in random_crop_scale)
            if not 0 < lo <= hi <= 1:
                raise ValueError(f'random_crop_scale must satisfy 0 < lo <= hi <= 1, got {random_crop_scale!r}')
            random_crop_scale = (lo, hi)
        self.img_size = img_size
        self.random_crop_scale = random_crop_scale
        self.max_retries = max_retries
        self.skipped_at_load: List[str] = []

    def load_image(self, index: int) -> Image.Image:
        raise NotImplementedError

    def describe(self, index: int) -> str:
        return str(index)

    def __getitem__(self, index: int) -> Dict:
        for attempt in range(self.max_retries + 1):
            i = (index + attempt) % len(self)
            try:
                img = self.load_image(i)
            except (OSError, UnidentifiedImageError, ValueError) as err:
                self.skipped_at_load.append(self.describe(i))
                print_log(f'{type(self).__name__}: skipping unreadable image {self.describe(i)} ({err}); '
                          f'{len(self.skipped_at_load)} skipped at load time so far in this process',
                          logger='current', level=30)
                continue
            return dict(inputs=square_crop_to_tensor(img, self.img_size, self.random_crop_scale))
        raise RuntimeError(f'{type(self).__name__}: {self.max_retries + 1} consecutive images from index {index} '
                           'could not be read; check the files (or the disk)')


@DATASETS.register_module()
class ImageFolderDataset(_SquareImageDataset):
    """Every image below ``data_root`` (recursive; ImageNet's ``train/<wnid>/*.JPEG`` layout works as is).

    Files are listed once, sorted, so the order does not depend on the file system. With ``verify='header'``
    (default) each file's header is opened once at start-up and unreadable files are dropped and counted (a few
    minutes for ImageNet's 1.28M files; ``'none'`` skips the check, ``'decode'`` decodes every pixel). A file
    that still fails later is replaced by the next readable one and logged.

    Args:
        data_root: folder of images (searched recursively, symlinks followed).
        img_size: side of the square training crops (the target resolution of pretraining).
        extensions: accepted file endings (case-insensitive).
        verify: 'header', 'decode' or 'none' (see above).
        random_crop_scale: see :func:`square_crop_to_tensor`; None for the deterministic center crop.
        max_files: keep only the first ``max_files`` files of the sorted list (quick experiments).
        max_retries: how many following files to try when one fails at load time.
    """

    def __init__(self, data_root: str, img_size: int = 448, extensions: Sequence[str] = IMG_EXTENSIONS,
                 verify: str = 'header', random_crop_scale: Optional[Sequence[float]] = None,
                 max_files: Optional[int] = None, max_retries: int = 10) -> None:
        super().__init__(img_size, random_crop_scale, max_retries)
        if verify not in _VERIFY_MODES:
            raise ValueError(f"ImageFolderDataset: verify must be one of {_VERIFY_MODES}, got {verify!r}")
        if not osp.isdir(data_root):
            raise FileNotFoundError(f'ImageFolderDataset: data_root {data_root!r} is not a folder; set '
                                    'train_dataloader.dataset.data_root (e.g. --cfg-options '
                                    'train_dataloader.dataset.data_root=/path/to/images)')
        self.data_root = data_root
        exts = tuple(e.lower() for e in extensions)
        files = []
        for root, dirs, names in os.walk(data_root, followlinks=True):
            dirs.sort()
            files.extend(osp.join(root, n) for n in sorted(names) if n.lower().endswith(exts))
        if not files:
            raise FileNotFoundError(f'ImageFolderDataset: no image files ({", ".join(sorted(set(exts)))}) found '
                                    f'under {data_root!r} (searched recursively); point data_root at a folder of '
                                    'images or pass extensions=...')
        if max_files is not None:
            files = files[:max_files]
        self.skipped_at_start: List[str] = []
        if verify != 'none':
            readable = []
            for path in files:
                try:
                    with Image.open(path) as img:
                        if verify == 'decode':
                            img.convert('RGB')
                    readable.append(path)
                except (OSError, UnidentifiedImageError, ValueError):
                    self.skipped_at_start.append(path)
            files = readable
        if self.skipped_at_start:
            shown = ', '.join(osp.relpath(p, data_root) for p in self.skipped_at_start[:5])
            print_log(f'ImageFolderDataset: skipped {len(self.skipped_at_start)} unreadable or corrupt files under '
                      f'{data_root!r} (e.g. {shown})', logger='current', level=30)
        if not files:
            raise RuntimeError(f'ImageFolderDataset: all {len(self.skipped_at_start)} image files under '
                               f'{data_root!r} are unreadable (e.g. {self.skipped_at_start[0]!r}); check the files')
        self.files = files
        print_log(f'ImageFolderDataset: {len(files)} images under {data_root!r} '
                  f'({len(self.skipped_at_start)} skipped as unreadable)', logger='current')

    def __len__(self) -> int:
        return len(self.files)

    def describe(self, index: int) -> str:
        return self.files[index]

    def load_image(self, index: int) -> Image.Image:
        with Image.open(self.files[index]) as img:
            img.load()
            return img.copy()


#: photographs bundled with scikit-image (no download needed), split for the offline demo.
SKIMAGE_TRAIN = ('camera', 'coffee', 'clock', 'coins', 'hubble_deep_field', 'immunohistochemistry', 'retina', 'moon',
                 'page', 'text', 'brick', 'grass', 'gravel', 'logo', 'colorwheel', 'cell', 'horse')
SKIMAGE_HELDOUT = ('astronaut', 'chelsea', 'rocket')


@DATASETS.register_module()
class SkimageDataset(_SquareImageDataset):
    """The images that ship inside scikit-image (``skimage.data``): the offline demo's data, no download.

    Args:
        split: 'train' (:data:`SKIMAGE_TRAIN`) or 'heldout' (:data:`SKIMAGE_HELDOUT`); ignored if ``names`` given.
        names: explicit ``skimage.data`` function names.
        img_size, random_crop_scale: see :class:`ImageFolderDataset`.
        repeat: how many times the list is repeated per epoch (small lists make tiny epochs otherwise).
    """

    def __init__(self, split: str = 'train', names: Optional[Sequence[str]] = None, img_size: int = 448,
                 random_crop_scale: Optional[Sequence[float]] = None, repeat: int = 1) -> None:
        super().__init__(img_size, random_crop_scale, max_retries=0)
        try:
            import skimage.data
        except ImportError as err:
            raise ImportError('SkimageDataset needs scikit-image: pip install scikit-image '
                              '(it is listed in requirements/mm.txt)') from err
        if names is None:
            if split not in ('train', 'heldout'):
                raise ValueError(f"SkimageDataset: split must be 'train' or 'heldout', got {split!r}")
            names = SKIMAGE_TRAIN if split == 'train' else SKIMAGE_HELDOUT
        missing = [n for n in names if not callable(getattr(skimage.data, n, None))]
        if missing:
            raise ValueError(f'SkimageDataset: skimage.data has no image {missing}; pick names from '
                             f'{SKIMAGE_TRAIN + SKIMAGE_HELDOUT}')
        self.names = tuple(names)
        self.repeat = int(repeat)
        self._images = [self._to_pil(getattr(skimage.data, n)()) for n in self.names]

    @staticmethod
    def _to_pil(array: np.ndarray) -> Image.Image:
        array = np.asarray(array)
        if array.dtype == bool:
            array = array.astype(np.uint8) * 255
        return Image.fromarray(array.astype(np.uint8))

    def __len__(self) -> int:
        return len(self.names) * self.repeat

    def describe(self, index: int) -> str:
        return f'skimage.data.{self.names[index % len(self.names)]}'

    def load_image(self, index: int) -> Image.Image:
        return self._images[index % len(self.names)]
