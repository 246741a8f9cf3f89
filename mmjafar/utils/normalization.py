"""The one home of image normalisation constants.

Two scales exist on purpose and are named apart: timm and torchvision describe normalisation on images in
``[0, 1]`` (``IMAGENET_MEAN``/``IMAGENET_STD``), OpenMMLab data preprocessors on images in ``[0, 255]``
(``IMAGENET_MEAN_255``/``IMAGENET_STD_255``). The second pair is the first times 255, written out so that configs
and preprocessors can use the values OpenMMLab's own configs carry.

Example:
    >>> from mmjafar.utils.normalization import IMAGENET_MEAN, IMAGENET_MEAN_255
    >>> all(abs(255 * a - b) < 1e-9 for a, b in zip(IMAGENET_MEAN, IMAGENET_MEAN_255))
    True
"""
from typing import Tuple

IMAGENET_MEAN: Tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: Tuple[float, float, float] = (0.229, 0.224, 0.225)
IMAGENET_MEAN_255: Tuple[float, float, float] = (123.675, 116.28, 103.53)
IMAGENET_STD_255: Tuple[float, float, float] = (58.395, 57.12, 57.375)

__all__ = ['IMAGENET_MEAN', 'IMAGENET_STD', 'IMAGENET_MEAN_255', 'IMAGENET_STD_255']
