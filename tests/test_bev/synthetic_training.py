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


def load_train_tool():
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
    load_train_tool().main()
    scalars = [json.loads(line) for path in tmp_path.rglob('scalars.json') for line in path.read_text().splitlines()]
    losses = [s['loss'] for s in scalars if 'loss' in s]
    assert len(losses) == STEPS and all(math.isfinite(x) for x in losses), scalars
    assert losses[-1] < losses[0], losses  # the same batch every step: training lowers its loss
    ious = [s['bev/iou_vehicle'] for s in scalars if 'bev/iou_vehicle' in s]
    assert len(ious) == 1 and math.isfinite(ious[0]) and 0.0 <= ious[0] <= 1.0, scalars
