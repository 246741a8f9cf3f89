"""BEVFormer (slow): the static encoder (learned BEV queries, deformable self-attention, spatial cross-attention into
the cameras) overfits two synthetic samples."""
import os

import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate

import projects.bev.bev  # noqa: F401  (registration)
from mmjafar.registry import DATASETS, METRICS, MODELS

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG = os.path.join(REPO, 'projects', 'bev', 'configs', 'bevformer',
                      'bevformer_dinov2-s14_bilinear_nus-vehicle_synthetic.py')
STEPS, LR, WIDTH, LAYERS = 60, 2e-3, 32, 1


@pytest.mark.slow
def test_bevformer_overfits_two_synthetic_samples(bev_synthetic_root):
    """Trained on two synthetic samples without augmentation, the model reaches vehicle IoU > 0.9 on them."""
    torch.manual_seed(0)
    cfg = Config.fromfile(CONFIG)
    data_cfg = cfg.val_dataloader.dataset  # the val pipeline: no image or BEV augmentation
    data_cfg.update(data_root=str(bev_synthetic_root) + '/', split='mini_train', indices=2, test_mode=False)
    data_cfg.pipeline[1].final_size = (28, 60)
    dataset = DATASETS.build(data_cfg)
    batch = pseudo_collate([dataset[0], dataset[1]])

    model_cfg = cfg.model
    model_cfg.backbone.update(model_name='vit_small_patch14_dinov2', model_kwargs=dict(depth=1))
    model_cfg.neck.update(out_channels=WIDTH)
    model_cfg.view_transform.update(embed_dims=WIDTH, num_layers=LAYERS, num_points_cross=4, ffn_dims=2 * WIDTH)
    model_cfg.head.update(in_channels=WIDTH)
    model = MODELS.build(model_cfg)

    data = model.data_preprocessor(batch, training=True)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=LR, weight_decay=1e-7)
    model.train()
    for _ in range(STEPS):
        losses = model(data['inputs'], data['data_samples'], mode='loss')
        optimizer.zero_grad()
        sum(losses.values()).backward()
        optimizer.step()
    model.eval()
    metric = METRICS.build(dict(type='BEVIoUMetric'))
    with torch.no_grad():
        metric.process(batch, model(data['inputs'], data['data_samples'], mode='predict'))
    iou = metric.compute_metrics(metric.results)['iou_vehicle']
    assert sum(float(s.gt_bev.seg.sum()) for s in data['data_samples']) > 10  # vehicles to segment
    assert iou > 0.9, iou
