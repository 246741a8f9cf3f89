"""Datasets: unlabelled image sources for upsampler pretraining."""
from .image_folder import (SKIMAGE_HELDOUT, SKIMAGE_TRAIN, ImageFolderDataset, SkimageDataset,
                           square_crop_to_tensor)

__all__ = ['ImageFolderDataset', 'SkimageDataset', 'square_crop_to_tensor', 'SKIMAGE_TRAIN', 'SKIMAGE_HELDOUT']
