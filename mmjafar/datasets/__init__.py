"""Datasets: unlabelled image sources for upsampler pretraining; probe transforms, ADE20K pairs for the probe hook
and (with mmseg) seg datasets."""
from .ade20k import ade20k_pairs, load_ade20k_pair, square_crop_label
from .image_folder import (SKIMAGE_HELDOUT, SKIMAGE_TRAIN, ImageFolderDataset, SkimageDataset, central_square,
                           square_crop_to_tensor)
from .transforms import EvalAtCurrentSize

__all__ = [
    'EvalAtCurrentSize', 'ImageFolderDataset', 'SkimageDataset', 'central_square', 'square_crop_to_tensor',
    'SKIMAGE_TRAIN', 'SKIMAGE_HELDOUT', 'ade20k_pairs', 'load_ade20k_pair', 'square_crop_label'
]

try:  # segmentation datasets subclass mmseg's BaseSegDataset
    import mmseg  # noqa: F401
except ImportError:
    mmseg = None
if mmseg is not None:
    from .seg_datasets import COCOStuff27Dataset, Cityscapes27Dataset  # noqa: F401
    __all__ += ['COCOStuff27Dataset', 'Cityscapes27Dataset']
