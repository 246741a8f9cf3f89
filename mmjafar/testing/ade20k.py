"""A tiny synthetic dataset in the real ADE20K (``ADEChallengeData2016``) folder layout, for tests and demos."""
import os
from typing import Dict, Sequence

import numpy as np
from PIL import Image

#: sub-folders of an ADEChallengeData2016 root, per split
ADE20K_SPLITS = {'training': 'ADE_train_{:08d}', 'validation': 'ADE_val_{:08d}'}


def make_ade20k(root: str, num_train: int = 8, num_val: int = 4, size: Sequence[int] = (64, 80),
                classes: Sequence[int] = (1, 3, 5, 13), num_regions: int = 4, seed: int = 0,
                noise: float = 12.0) -> Dict[str, int]:
    """Write an ADE20K-shaped dataset under ``root``; returns the number of images per split.

    Layout (as the released archive)::

        root/images/training/ADE_train_00000001.jpg     RGB JPEG
        root/annotations/training/ADE_train_00000001.png  uint8 labels, 0 = "other", 1..150 = classes
        root/images/validation/ADE_val_00000001.jpg ...

    Each label map is a background of one class with ``num_regions`` rectangles of others, plus a strip of 0
    ("other", ignored by ``reduce_zero_label``); each class has its own colour in the image (with Gaussian noise),
    so a linear probe on any reasonable features can learn it.

    Args:
        root: output folder (created).
        num_train, num_val: images per split.
        size: ``(height, width)`` of every image.
        classes: ADE20K class ids (1..150) used in the label maps.
        num_regions: rectangles per image.
        seed: random seed (the same seed writes the same files).
        noise: standard deviation of the pixel noise (0-255 scale).
    """
    if not all(1 <= c <= 150 for c in classes) or not classes:
        raise ValueError(f'classes must be ADE20K ids in 1..150, got {classes}')
    rng = np.random.default_rng(seed)
    palette = {c: rng.integers(0, 256, size=3) for c in classes}
    height, width = size
    counts = {}
    for split, count in (('training', num_train), ('validation', num_val)):
        img_dir = os.path.join(root, 'images', split)
        ann_dir = os.path.join(root, 'annotations', split)
        os.makedirs(img_dir, exist_ok=True)
        os.makedirs(ann_dir, exist_ok=True)
        for i in range(1, count + 1):
            label = np.full((height, width), rng.choice(classes), dtype=np.uint8)
            for _ in range(num_regions):
                y0, x0 = rng.integers(0, height - 4), rng.integers(0, width - 4)
                y1, x1 = y0 + rng.integers(4, height // 2 + 4), x0 + rng.integers(4, width // 2 + 4)
                label[y0:y1, x0:x1] = rng.choice(classes)
            label[:, :2] = 0  # an "other" strip, as ADE20K's unlabelled pixels
            image = np.zeros((height, width, 3), dtype=np.float64)
            for c in classes:
                image[label == c] = palette[c]
            image += rng.normal(0.0, noise, size=image.shape)
            name = ADE20K_SPLITS[split].format(i)
            Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(
                os.path.join(img_dir, name + '.jpg'), quality=95)
            Image.fromarray(label).save(os.path.join(ann_dir, name + '.png'))
        counts[split] = count
    return counts

