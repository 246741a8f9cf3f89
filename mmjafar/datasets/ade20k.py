"""ADE20K (``ADEChallengeData2016``) read without mmseg: the image/annotation pairs of a split and one pair as
tensors, for the linear probe of :class:`~mmjafar.engine.hooks.ADE20KProbeHook`."""
import os
from typing import List, Optional, Tuple

import numpy as np
import torch
from PIL import Image

from .image_folder import central_square, square_crop_to_tensor

#: the splits of an ADEChallengeData2016 folder (``images/<split>``, ``annotations/<split>``)
ADE20K_SPLIT_DIRS = ('training', 'validation')

#: label of ignored pixels (ADE20K's 0 "other" after ``reduce_zero_label``)
IGNORE_INDEX = 255


def ade20k_pairs(root: str, split: str, limit: Optional[int] = None) -> List[Tuple[str, str]]:
    """Sorted ``(image, annotation)`` paths of an ADEChallengeData2016 split ('training' or 'validation')."""
    if split not in ADE20K_SPLIT_DIRS:
        raise ValueError(f'split must be one of {ADE20K_SPLIT_DIRS}, got {split!r}')
    img_dir, ann_dir = os.path.join(root, 'images', split), os.path.join(root, 'annotations', split)
    if not os.path.isdir(img_dir) or not os.path.isdir(ann_dir):
        raise FileNotFoundError(f'{root!r} is not an ADEChallengeData2016 folder ({img_dir} or {ann_dir} is missing);'
                                ' set data_root to the folder holding images/ and annotations/')
    names = sorted(os.path.splitext(f)[0] for f in os.listdir(img_dir) if f.endswith('.jpg'))
    pairs = [(os.path.join(img_dir, n + '.jpg'), os.path.join(ann_dir, n + '.png')) for n in names]
    missing = [a for _, a in pairs if not os.path.isfile(a)]
    if missing:
        raise FileNotFoundError(f'{len(missing)} annotations are missing in {ann_dir}, e.g. {missing[0]}')
    if not pairs:
        raise FileNotFoundError(f'no .jpg image in {img_dir}')
    return pairs[:limit] if limit is not None else pairs


def square_crop_label(label: Image.Image, size: int) -> torch.Tensor:
    """Label map -> ``(size, size)`` int64 tensor: the central square (as :func:`square_crop_to_tensor`), nearest."""
    label = label.resize((size, size), Image.NEAREST, box=central_square(*label.size))
    return torch.from_numpy(np.asarray(label, dtype=np.int64).copy())


def load_ade20k_pair(image_path: str, label_path: str, img_size: int,
                     label_size: Optional[int] = None) -> Tuple[torch.Tensor, torch.Tensor]:
    """Central square crops of one pair: the image as ``(3, img_size, img_size)`` floats in ``[0, 1]`` and the
    labels as ``(label_size, label_size)`` int64 with ``reduce_zero_label`` applied (0 "other" -> 255 ignored,
    classes 1..150 -> 0..149)."""
    with Image.open(image_path) as img:
        image = square_crop_to_tensor(img, img_size).float() / 255
    with Image.open(label_path) as lab:
        label = square_crop_label(lab, label_size or img_size)
    return image, torch.where(label == 0, torch.full_like(label, IGNORE_INDEX), label - 1)
