"""configs/mmseg: stock mmseg configs (inherited from the installed package) with upsampling necks."""
import glob
import os

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

import mmjafar  # noqa: F401
from mmjafar.evaluation.segmentor_cost import build_segmentor

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIGS = sorted(glob.glob(os.path.join(REPO, 'configs/mmseg/*.py')))
EXPECTED = {
    'upernet_vit-b16_{}_8xb2-80k_ade20k-512x512.py': ('bilinear', 'jafar', 'jbu', 'naf', 'anyup'),
    'segformer_mit-b1_{}_8xb2-160k_ade20k-512x512.py': ('bilinear', 'carafe', 'sapa', 'dysample', 'jbu', 'jafar',
                                                        'naf'),
    'fpn_r50_{}_4xb4-160k_ade20k-512x512.py': ('bilinear', 'jafar', 'carafe'),
}
UPSAMPLER_TYPES = {'bilinear': 'Bilinear', 'carafe': 'CARAFE', 'sapa': 'SAPA', 'dysample': 'DySample',
                   'jbu': 'JBUStack', 'jafar': 'JAFAR', 'naf': 'NAF', 'anyup': 'AnyUp'}


def test_every_expected_config_exists():
    names = {os.path.basename(c) for c in CONFIGS}
    expected = {pattern.format(m) for pattern, methods in EXPECTED.items() for m in methods}
    assert names == expected


def align_neck(cfg):
    neck = cfg.model.neck
    return neck[-1] if isinstance(neck, list) else neck


@pytest.mark.parametrize('path', CONFIGS, ids=os.path.basename)
def test_config_is_the_stock_one_plus_the_neck(path):
    cfg = Config.fromfile(path)
    name = os.path.basename(path)
    method = name.split('_')[2]
    assert cfg.custom_imports.imports == ['mmjafar'] and cfg.default_scope == 'mmseg'
    assert cfg.model.type == 'GuidedEncoderDecoder'
    neck = align_neck(cfg)
    assert neck.upsampler.type == UPSAMPLER_TYPES[method]
    # everything else is mmseg's own config
    assert cfg.train_cfg.type == 'IterBasedTrainLoop' and cfg.train_dataloader.dataset.type == 'ADE20KDataset'
    assert cfg.model.decode_head.num_classes == 150
    if name.startswith('upernet'):
        assert (neck.type, neck.in_channels, neck.scales) == ('GuidedMultiLevelNeck', [768] * 4, [4, 2, 1, 0.5])
        assert neck.get('upsample_inputs', False) == (method != 'bilinear')
    elif name.startswith('segformer'):
        assert cfg.model.backbone.embed_dims == 64 and neck.in_channels == [64, 128, 320, 512]
    else:
        assert cfg.model.neck[0].type == 'FPN' and cfg.model.decode_head.feature_strides == [4, 4, 4, 4]


@pytest.mark.parametrize('path', CONFIGS, ids=os.path.basename)
def test_config_builds_offline_and_runs(path):
    """Random weights (no checkpoint is read); one 64x64 forward (NAF's 9x9 window needs a grid of 9 or more at
    the coarsest level: 160x160 for ViT at stride 16, 320x320 for MiT at stride 32); the coarse levels reach the
    decoder at its finest grid."""
    size = (160 if 'upernet' in path else 320) if '_naf_' in path else 64
    opts = {'model.backbone.num_layers': 4, 'model.backbone.out_indices': (0, 1, 2, 3),
            'model.backbone.img_size': (size, size)} if 'upernet' in path else None
    with DefaultScope.overwrite_default_scope('mmseg'):
        model = build_segmentor(path, opts)
    seen = []
    hook = align_neck_module(model).register_forward_hook(lambda m, a, out: seen.append([x.shape for x in out]))
    with torch.no_grad():
        logits = model(torch.randn(1, 3, size, size), mode='tensor')
    hook.remove()
    assert logits.shape[1] == 150 and torch.isfinite(logits).all()
    if 'upernet' in path:
        assert [s[-1] for s in seen[0]] == [size // 4, size // 8, size // 16, size // 32]
    else:
        assert len({s[-2:] for s in seen[0]}) == 1


def align_neck_module(model):
    return model.neck.necks[-1] if hasattr(model.neck, 'necks') else model.neck
