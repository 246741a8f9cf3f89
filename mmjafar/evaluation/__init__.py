"""Evaluation of upsamplers beyond linear probes: Grad-CAM faithfulness, zero-shot open-vocabulary segmentation
(``OpenVocabSegmentor``, registered when mmseg is installed) and segmentation counts without mmseg."""
from .cam_metrics import (CAM_METRICS, adcc, average_drop, average_gain, average_increase, cam_metrics_per_image,
                          coherency, complexity, summarize_cam_metrics)
from .cam_runner import (evaluate_cam_dataset, format_cam_table, list_labelled_images, read_class_index,
                         select_candidates)
from .gradcam import UpsampledGradCAM, build_vit_classifier
from .segmentation_metrics import miou_and_accuracy, segmentation_counts

__all__ = [
    'CAM_METRICS', 'adcc', 'average_drop', 'average_gain', 'average_increase', 'cam_metrics_per_image', 'coherency',
    'complexity', 'summarize_cam_metrics', 'evaluate_cam_dataset', 'format_cam_table', 'list_labelled_images',
    'read_class_index', 'select_candidates', 'UpsampledGradCAM', 'build_vit_classifier', 'miou_and_accuracy',
    'segmentation_counts'
]

try:  # the open-vocabulary segmentor is an mmseg segmentor
    import mmseg  # noqa: F401
except ImportError:
    mmseg = None
if mmseg is not None:
    from .openvocab_segmentor import OpenVocabSegmentor  # noqa: F401  (registers the model)
    __all__ += ['OpenVocabSegmentor']
