"""Every pretraining config loads, keeps the paper's settings and builds (with a tiny random backbone)."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config

import mmjafar  # noqa: F401
from mmjafar.registry import DATASETS, MODELS

from ..test_engine.pretrain_utils import REPO, TINY_BACKBONE

CONFIGS = sorted(glob.glob(osp.join(REPO, 'configs', 'pretrain', '*.py')))
PAPER = [c for c in CONFIGS if not c.endswith('jafar_demo.py')]


def test_there_is_a_paper_config_per_backbone():
    names = {Config.fromfile(c).model.backbone.model_name for c in PAPER}
    assert names == {'vit_small_patch14_dinov2.lvd142m', 'vit_small_patch14_reg4_dinov2.lvd142m',
                     'vit_base_patch16_224.dino', 'vit_base_patch16_clip_384', 'vit_base_patch16_siglip_512.v2_webli',
                     'vit_small_patch16_dinov3.lvd1689m', 'vit_base_patch16_dinov3.lvd1689m'}


@pytest.mark.parametrize('path', PAPER, ids=osp.basename)
def test_paper_settings(path):
    cfg = Config.fromfile(path)
    assert cfg.train_cfg.max_iters == 100_000 and cfg.train_dataloader.batch_size == 4
    assert cfg.optim_wrapper.optimizer.type == 'AdamW' and cfg.optim_wrapper.optimizer.lr == 2e-4
    assert cfg.train_dataloader.dataset.img_size == 448
    assert tuple(cfg.model.downsample_range) == (2.0, 4.0) and cfg.model.guidance_scale == 0.5
    assert cfg.model.upsampler.v_dim is None  # read from the backbone
    assert cfg.default_hooks.checkpoint.backend_args.backend == 'atomic_local'
    assert {'type': 'TensorboardVisBackend'} in cfg.visualizer.vis_backends


@pytest.mark.parametrize('path', CONFIGS, ids=osp.basename)
def test_config_builds(path):
    cfg = Config.fromfile(path)
    cfg.model.backbone = TINY_BACKBONE
    model = MODELS.build(cfg.model)
    assert model.upsampler.v_dim == 64
    for hook in cfg.custom_hooks:
        assert hook.type in ('ExportUpsamplerHook', 'HeldOutUpsamplingHook')


def test_demo_is_offline_and_split():
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'pretrain', 'jafar_demo.py'))
    assert cfg.model.backbone.random_init is True  # falls back to random weights instead of failing offline
    train = DATASETS.build(cfg.train_dataloader.dataset)
    held = DATASETS.build([h for h in cfg.custom_hooks if h.type == 'HeldOutUpsamplingHook'][0].dataset)
    assert len(train) >= 10 and len(held) >= 2 and not set(train.names) & set(held.names)
