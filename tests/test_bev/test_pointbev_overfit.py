"""PointBeV (slow): the sparse coarse/fine training overfits two synthetic samples, checked by a dense predict."""
import os

import pytest
import torch

from mmjafar.registry import MODELS
from .synthetic_training import REPO, overfit_and_score, two_synthetic_samples

CONFIG = os.path.join(REPO, 'projects', 'bev', 'configs', 'pointbev',
                      'pointbev_dinov2-s14_bilinear_nus-vehicle_synthetic.py')
# With the synthetic config's cell budgets (160 coarse + 160 fine of 2 500 cells, 33 vehicle cells per sample) the
# sparse passes see few positives: at a constant learning rate the dense IoU measured 0.0 at 60 steps and still
# swung between 0.69 and 1.0 from 240 to 300 steps; decaying the rate to 5 % over 400 steps, it measured 0.88 at 300
# and 1.0 from 320 on (seed 0).
STEPS, FINAL_LR_FACTOR = 400, 0.05


@pytest.mark.slow
def test_pointbev_overfits_two_synthetic_samples(bev_synthetic_root):
    """Trained with its real sparse passes (random coarse cells + fine cells grown around the top coarse cells,
    loss on the predicted cells only, the synthetic config's budgets) on two synthetic samples without
    augmentation, the model's dense predict reaches vehicle IoU > 0.9 on them, and the loss went down."""
    torch.manual_seed(0)
    cfg, batch = two_synthetic_samples(CONFIG, bev_synthetic_root, final_size=(28, 60))
    # the synthetic config's model, narrowed: one-block random ViT, 16-channel BEV features, 8-channel UNet
    width = 16
    model_cfg = cfg.model
    model_cfg.backbone.update(model_name='vit_small_patch14_dinov2', model_kwargs=dict(depth=1))
    model_cfg.neck.update(out_channels=width)
    model_cfg.view_transform.update(in_channels=width, out_channels=width, coord_embed=dict(hidden_channels=16))
    model_cfg.bev_encoder.update(in_channels=width, base_channels=8)
    model_cfg.head.update(in_channels=width)
    model = MODELS.build(model_cfg)
    num_cells = 50 * 50
    assert model.fine_pass and model.coarse_cells + model.fine_cells < num_cells  # genuinely sparse passes

    predicted = []
    forward_train = model.forward_train

    def record(inputs):
        preds, mask = forward_train(inputs)
        predicted.append(mask.flatten(1).sum(1))
        return preds, mask

    model.forward_train = record
    iou, losses = overfit_and_score(model, batch, STEPS, final_lr_factor=FINAL_LR_FACTOR)
    assert len(predicted) == STEPS and all(int(n.max()) < num_cells for n in predicted)  # never a dense step
    assert sum(losses[-10:]) < 0.5 * sum(losses[:10])
    assert iou > 0.9, iou
