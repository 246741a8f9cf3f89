"""Every BEV config (all models, found by glob) loads, builds its model without downloads or checkpoint files,
and uses the same BEV grid in the model and in the dataset's GT rasteriser."""
import glob
import os

import pytest
from mmengine.config import Config

import projects.bev.bev  # noqa: F401  (registration)
from mmjafar.registry import MODELS
from projects.bev.bev.geometry import BEVGrid

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG_ROOT = os.path.join(REPO, 'projects', 'bev', 'configs')
LEAVES = sorted(p for p in glob.glob(os.path.join(CONFIG_ROOT, '**', '*.py'), recursive=True)
                if f'{os.sep}_base_{os.sep}' not in p)
UPSAMPLER_TYPES = {'lowres': None, 'bilinear': 'Bilinear', 'featup': 'JBUStack', 'jafar': 'JAFAR'}


def _ids(paths):
    return [os.path.relpath(p, CONFIG_ROOT) for p in paths]


def _pipeline_grids(cfg):
    grids = []
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        for step in cfg[loader]['dataset']['pipeline']:
            if step['type'] == 'RasterizeBEVTargets':
                grids.append(BEVGrid.build(step['grid']))
    return grids


def _offline(cfg):
    """No hub, no weight files, a 1-block ViT: what CI can build."""
    cfg.model.backbone.update(pretrained=False, random_init=True, checkpoint=None, model_kwargs=dict(depth=1))
    if isinstance(cfg.model.get('upsampler'), dict):
        cfg.model.upsampler.init_cfg = None
    return cfg


def test_every_model_has_its_leaves():
    names = {os.path.basename(p) for p in LEAVES}
    for model in ('simplebev', 'pointbev', 'bevformer'):
        for variant in UPSAMPLER_TYPES:
            for suffix in ('', '_mini', '_synthetic'):
                name = f'{model}_dinov2-s14_{variant}_nus-vehicle{suffix}.py'
                if any(n.startswith(f'{model}_') for n in names):
                    assert name in names, f'missing config {name}'


@pytest.mark.parametrize('path', LEAVES, ids=_ids(LEAVES))
def test_leaf_inherits_instead_of_copying(path):
    """The runtime (scope, imports) is said once, in _base_/default_runtime.py; the Bilinear configs (and the
    Low-Res ones on their own image size) compose the bases, the others inherit the Bilinear config of their data."""
    text = open(path).read()
    assert 'custom_imports' not in text and 'default_scope' not in text
    name = os.path.basename(path)
    inherits_leaf = "_base_ = ['./" in text
    assert inherits_leaf != ('_bilinear_' in name or ('_lowres_' in name and not name.endswith('_synthetic.py')))


@pytest.mark.parametrize('path', LEAVES, ids=_ids(LEAVES))
def test_config_loads_builds_and_grids_match(path):
    cfg = Config.fromfile(path)
    name = os.path.basename(path)
    assert cfg.default_scope == 'mmjafar'
    assert 'projects.bev.bev' in cfg.custom_imports['imports']
    # the upsampler the file name promises
    variant = next(v for v in UPSAMPLER_TYPES if f'_{v}_' in name)
    upsampler = cfg.model.get('upsampler')
    assert (upsampler['type'] if upsampler else None) == UPSAMPLER_TYPES[variant], name
    if upsampler and 'init_cfg' in upsampler and upsampler['init_cfg']:
        checkpoint = upsampler['init_cfg']['checkpoint']
        assert not checkpoint.startswith(('http:', 'https:')), 'upsampler weights come from local files'
    # the paper's set-up in the full configs
    sizes = {tuple(step['final_size']) for step in cfg.train_dataloader.dataset.pipeline
             if step['type'] == 'MultiViewImageAffineAug'}
    if not name.endswith('_synthetic.py'):
        assert sizes == ({(224, 476)} if variant == 'lowres' else {(224, 480)}), sizes
        assert cfg.train_dataloader.batch_size == 1 and cfg.train_cfg.max_epochs == 100
        assert cfg.optim_wrapper.optimizer.type == 'AdamW' and cfg.optim_wrapper.optimizer.lr == 3e-4
        assert cfg.default_hooks.checkpoint.save_best == 'bev/iou_vehicle'
    # model grid == dataset grid (every split's rasteriser)
    model_grid = BEVGrid.build(cfg.model.get('grid'))
    grids = _pipeline_grids(cfg)
    assert grids and all(g == model_grid for g in grids), (model_grid, grids)
    model = MODELS.build(_offline(cfg).model)
    assert model.grid == model_grid
    assert (model.upsampler is None) == (variant == 'lowres')
