"""Datasets: unlabelled image sources for upsampler pretraining; probe transforms and (with mmseg) seg datasets."""
from .image_folder import (SKIMAGE_HELDOUT, SKIMAGE_TRAIN, ImageFolderDataset, SkimageDataset,
                           square_crop_to_tensor)
from .transforms import EvalAtCurrentSize

__all__ = [
    'EvalAtCurrentSize', 'ImageFolderDataset', 'SkimageDataset', 'square_crop_to_tensor', 'SKIMAGE_TRAIN',
    'SKIMAGE_HELDOUT'
]

try:  # segmentation datasets subclass mmseg's BaseSegDataset
    import mmseg  # noqa: F401
except ImportError:
    mmseg = None
if mmseg is not None:
    from .seg_datasets import COCOStuff27Dataset, Cityscapes27Dataset  # noqa: F401
    __all__ += ['COCOStuff27Dataset', 'Cityscapes27Dataset']
