"""BEVFormer (slow): the static encoder (learned BEV queries, deformable self-attention, spatial cross-attention into
the cameras) overfits two synthetic samples."""
import os

import pytest
import torch

from mmjafar.registry import MODELS
from .synthetic_training import REPO, overfit_and_score, two_synthetic_samples

CONFIG = os.path.join(REPO, 'projects', 'bev', 'configs', 'bevformer',
                      'bevformer_dinov2-s14_bilinear_nus-vehicle_synthetic.py')
STEPS, WIDTH, LAYERS = 60, 32, 1


@pytest.mark.slow
def test_bevformer_overfits_two_synthetic_samples(bev_synthetic_root):
    """Trained on two synthetic samples without augmentation, the model reaches vehicle IoU > 0.9 on them."""
    torch.manual_seed(0)
    cfg, batch = two_synthetic_samples(CONFIG, bev_synthetic_root, final_size=(28, 60))
    model_cfg = cfg.model
    model_cfg.backbone.update(model_name='vit_small_patch14_dinov2', model_kwargs=dict(depth=1))
    model_cfg.neck.update(out_channels=WIDTH)
    model_cfg.view_transform.update(embed_dims=WIDTH, num_layers=LAYERS, num_points_cross=4, ffn_dims=2 * WIDTH)
    model_cfg.head.update(in_channels=WIDTH)
    iou, _ = overfit_and_score(MODELS.build(model_cfg), batch, STEPS)
    assert iou > 0.9, iou
