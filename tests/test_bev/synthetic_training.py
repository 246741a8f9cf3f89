"""Shared by the model tests: one training iteration + one validation pass of a synthetic BEV config through
``tools/train.py``'s ``main()`` (in-process: a subprocess would spend most of its time importing)."""
import importlib.util
import json
import math
import os
import sys
from typing import Sequence

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SMALL_IMAGES = ('train_dataloader.dataset.pipeline.1.final_size=(28,60)',
                'val_dataloader.dataset.pipeline.1.final_size=(28,60)')


def load_train_tool(monkeypatch):
    """``tools/train.py`` as a module, with ``tools/`` first on the import path as ``python tools/train.py`` has it
    (for its sibling ``cli_args``), for this test only."""
    monkeypatch.syspath_prepend(os.path.join(REPO, 'tools'))
    spec = importlib.util.spec_from_file_location('bev_train_tool', os.path.join(REPO, 'tools', 'train.py'))
    train = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(train)
    return train


#: training iterations of each run, all on the same sample without augmentation
STEPS = 4


def train_and_validate_synthetic(model_name: str, variant: str, data_root, tmp_path, monkeypatch,
                                 extra_options: Sequence[str] = ()) -> None:
    """Run ``{model_name}_dinov2-s14_{variant}_nus-vehicle_synthetic.py`` for :data:`STEPS` iterations on one sample
    without augmentation (a fixed batch; tiny random ViT, no upsampler weights, no checkpoints), then one
    validation pass; check that every logged loss is finite, that the loss went down, and that the IoU is a
    number in [0, 1]."""
    config = os.path.join(REPO, 'projects', 'bev', 'configs', model_name,
                          f'{model_name}_dinov2-s14_{variant}_nus-vehicle_synthetic.py')
    root = str(data_root) + '/'
    options = [f'train_dataloader.dataset.data_root={root}', f'val_dataloader.dataset.data_root={root}',
               'train_dataloader.dataset.indices=1', 'val_dataloader.dataset.indices=1',
               # the fixed batch: the val pipeline's image transform, no BEV augmentation
               'train_dataloader.dataset.pipeline.1.is_train=False', 'train_dataloader.dataset.pipeline.2.enabled=False',
               f'train_cfg.max_epochs={STEPS}', f'train_cfg.val_interval={STEPS}',
               'model.backbone.model_kwargs.depth=1', 'default_hooks.logger.interval=1',
               'default_hooks.checkpoint.save_best=None', 'default_hooks.checkpoint.interval=-1',
               'default_hooks.checkpoint.save_last=False',
               # a fresh visualizer instance (mmengine keeps them by name), so that the scalars land in tmp_path
               f'visualizer.name={model_name}_{variant}_{tmp_path.name}', *extra_options]
    monkeypatch.setattr(sys, 'argv', ['train.py', config, '--work-dir', str(tmp_path), '--cfg-options', *options])
    load_train_tool(monkeypatch).main()
    scalars = [json.loads(line) for path in tmp_path.rglob('scalars.json') for line in path.read_text().splitlines()]
    losses = [s['loss'] for s in scalars if 'loss' in s]
    assert len(losses) == STEPS and all(math.isfinite(x) for x in losses), scalars
    assert losses[-1] < losses[0], losses  # the same batch every step: training lowers its loss
    ious = [s['bev/iou_vehicle'] for s in scalars if 'bev/iou_vehicle' in s]
    assert len(ious) == 1 and math.isfinite(ious[0]) and 0.0 <= ious[0] <= 1.0, scalars


def two_synthetic_samples(config: str, data_root, final_size=None):
    """``(cfg, batch)``: the config and its two first ``mini_train`` samples through the val pipeline (no image or
    BEV augmentation), optionally resized to ``final_size``."""
    import projects.bev.bev  # noqa: F401  (registration)
    from mmengine.config import Config
    from mmengine.dataset import pseudo_collate
    from mmjafar.registry import DATASETS
    cfg = Config.fromfile(config)
    data_cfg = cfg.val_dataloader.dataset
    data_cfg.update(data_root=str(data_root) + '/', split='mini_train', indices=2, test_mode=False)
    if final_size is not None:
        data_cfg.pipeline[1].final_size = final_size
    dataset = DATASETS.build(data_cfg)
    return cfg, pseudo_collate([dataset[0], dataset[1]])


def overfit_and_score(model, batch, steps: int, lr: float = 2e-3, final_lr_factor: float = 1.0):
    """Train ``model`` on the fixed ``batch`` for ``steps`` AdamW steps (the learning rate decaying linearly to
    ``lr * final_lr_factor``), then score its dense prediction on it.

    Returns the vehicle IoU and the summed loss of every step; asserts that the batch has vehicles to segment
    and that every loss is finite.
    """
    import torch
    from mmjafar.registry import METRICS
    data = model.data_preprocessor(batch, training=True)
    assert sum(float(s.gt_bev.seg.sum()) for s in data['data_samples']) > 10  # vehicles to segment
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr, weight_decay=1e-7)
    schedule = torch.optim.lr_scheduler.LinearLR(optimizer, 1.0, final_lr_factor, total_iters=steps)
    model.train()
    history = []
    for _ in range(steps):
        losses = model(data['inputs'], data['data_samples'], mode='loss')
        total = sum(losses.values())
        assert torch.isfinite(total), losses
        history.append(total.item())
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
        schedule.step()
    model.eval()
    metric = METRICS.build(dict(type='BEVIoUMetric'))
    with torch.no_grad():
        metric.process(batch, model(data['inputs'], data['data_samples'], mode='predict'))
    return metric.compute_metrics(metric.results)['iou_vehicle'], history
