"""Evaluation of upsamplers beyond linear probes: Grad-CAM faithfulness and zero-shot open-vocabulary segmentation."""
from .cam_metrics import (CAM_METRICS, adcc, average_drop, average_gain, average_increase, cam_metrics_per_image,
                          coherency, complexity, summarize_cam_metrics)
from .cam_runner import (evaluate_cam_dataset, format_cam_table, list_labelled_images, read_class_index,
                         select_candidates)
from .gradcam import UpsampledGradCAM, build_vit_classifier
from .upsamplers import build_named_upsampler, resolve_upsampler_name

__all__ = [
    'CAM_METRICS', 'adcc', 'average_drop', 'average_gain', 'average_increase', 'cam_metrics_per_image', 'coherency',
    'complexity', 'summarize_cam_metrics', 'evaluate_cam_dataset', 'format_cam_table', 'list_labelled_images',
    'read_class_index', 'select_candidates', 'UpsampledGradCAM', 'build_vit_classifier', 'build_named_upsampler',
    'resolve_upsampler_name'
]
