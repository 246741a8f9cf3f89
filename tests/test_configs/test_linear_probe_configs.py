"""Every linear-probe config loads, names registered types, and builds into a model that runs."""
import ast
import glob
import os
import warnings

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmseg.registry import MODELS

import mmjafar  # noqa: F401  (registers the upsampler types the configs name)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIGS = sorted(glob.glob(os.path.join(REPO, 'configs/linear_probe/*.py')))
METHODS = ('bilinear', 'nearest', 'bicubic', 'strided', 'largeimage', 'jafar', 'featup', 'lift', 'loftup', 'anyup',
           'naf', 'carafe', 'dysample', 'sapa', 'uplift')
# DINOv3 backbones with JAFAR: timm name -> feature width
DINOV3 = {'s16': ('vit_small_patch16_dinov3.lvd1689m', 384), 'b16': ('vit_base_patch16_dinov3.lvd1689m', 768)}
# trained jointly with the probe (task-dependent) or training-free: no released weights, not frozen
UNFROZEN = ('Bilinear', 'Nearest', 'Bicubic', 'CARAFE', 'DySample', 'SAPA')
DATASETS = {'voc': 21, 'ade20k': 150, 'cocostuff27': 27, 'cityscapes27': 27}


def test_one_config_per_method_and_dataset():
    names = {os.path.basename(c) for c in CONFIGS}
    for method in METHODS:
        for dataset in DATASETS:
            epochs = 5 if dataset == 'cocostuff27' else 20
            assert f'{method}_vit-s14-dinov2_1xb4-{epochs}e_{dataset}-448x448.py' in names
    assert 'jafar_vit-s14-dinov2_1xb4-20e_nyu-depth-448x448.py' in names
    for tag in DINOV3:
        for dataset in DATASETS:
            epochs = 5 if dataset == 'cocostuff27' else 20
            assert f'jafar_vit-{tag}-dinov3_1xb4-{epochs}e_{dataset}-448x448.py' in names


def base_files(path):
    """The ``_base_`` entries of a config file, as written."""
    for node in ast.parse(open(path).read()).body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], 'id', None) == '_base_':
            return ast.literal_eval(node.value)
    return []


@pytest.mark.parametrize('path', CONFIGS, ids=os.path.basename)
def test_config_inherits_instead_of_copying(path):
    """A dataset's Bilinear config composes the bases (dataset, runtime, schedule); every other config inherits
    one config of this folder and states only what differs."""
    bases = base_files(path)
    if os.path.basename(path).startswith('bilinear_'):
        assert [os.path.dirname(b) for b in bases] == ['../_base_/datasets', '../_base_', '../_base_/schedules']
    else:
        assert len(bases) == 1 and bases[0].startswith('./'), bases
        assert os.path.isfile(os.path.join(os.path.dirname(path), bases[0]))


@pytest.mark.parametrize('path', CONFIGS, ids=os.path.basename)
def test_config_is_consistent(path):
    cfg = Config.fromfile(path)
    assert cfg.custom_imports.imports == ['mmjafar'] and cfg.default_scope == 'mmseg'
    tag = os.path.basename(path).split('_')[1].split('-')[1]
    name, width = DINOV3[tag] if 'dinov3' in path else ('vit_small_patch14_dinov2.lvd142m', 384)
    assert cfg.model.backbone.model_name == name and cfg.model.backbone.frozen
    assert cfg.model.decode_head.in_channels == width
    assert cfg.train_dataloader.batch_size == 4 and cfg.crop_size == (448, 448)
    for node in (cfg.model, cfg.model.backbone, cfg.model.neck, cfg.model.decode_head):
        assert MODELS.get(node.type) is not None, node.type
    if 'nyu-depth' not in path:
        dataset = os.path.basename(path).split('_')[-1].split('-')[0]
        assert cfg.model.decode_head.num_classes == DATASETS[dataset] == cfg.num_classes
        assert cfg.train_cfg.max_epochs == (5 if dataset == 'cocostuff27' else 20)
    neck = cfg.model.neck
    if neck.type not in UNFROZEN:
        assert neck.frozen and neck.init_cfg.type == 'Pretrained'


@pytest.mark.parametrize('method', METHODS)
def test_config_builds_and_runs(method):
    name = f'{method}_vit-s14-dinov2_1xb4-20e_ade20k-448x448.py'
    cfg = Config.fromfile(os.path.join(REPO, 'configs/linear_probe', name))
    cfg.model.backbone.update(pretrained=False, random_init=True, model_kwargs=dict(depth=1))
    cfg.model.neck.pop('init_cfg', None)  # released weights are not part of the repository
    with DefaultScope.overwrite_default_scope('mmseg'), warnings.catch_warnings():
        warnings.simplefilter('ignore')
        model = MODELS.build(cfg.model).eval()
    with torch.no_grad():  # 126 px: 9x9 patches, the smallest grid NAF's 9x9 window accepts
        logits = model(torch.randn(1, 3, 126, 126), mode='tensor')
    assert logits.shape == (1, 150, 126, 126)


@pytest.mark.parametrize('tag', sorted(DINOV3))
def test_dinov3_config_builds_and_runs(tag):
    name = f'jafar_vit-{tag}-dinov3_1xb4-20e_ade20k-448x448.py'
    cfg = Config.fromfile(os.path.join(REPO, 'configs/linear_probe', name))
    cfg.model.backbone.update(pretrained=False, random_init=True, model_kwargs=dict(depth=1))
    cfg.model.neck.pop('init_cfg', None)
    with DefaultScope.overwrite_default_scope('mmseg'), warnings.catch_warnings():
        warnings.simplefilter('ignore')
        model = MODELS.build(cfg.model).eval()
    assert model.backbone.embed_dim == DINOV3[tag][1] == model.neck.in_channels
    with torch.no_grad():  # 4x4 tokens of 16 px
        logits = model(torch.randn(1, 3, 64, 64), mode='tensor')
    assert logits.shape == (1, 150, 64, 64)
