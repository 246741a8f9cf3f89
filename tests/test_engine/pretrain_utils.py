"""Small pretraining set-ups shared by the engine tests (a 0.3M-parameter timm ViT, tiny JAFAR, a few images)."""
import os
import os.path as osp
from typing import Optional

import numpy as np
from mmengine.config import Config
from PIL import Image

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
BASE_CONFIG = osp.join(REPO, 'configs', 'pretrain', '_base_', 'jafar_pretrain.py')

TINY_BACKBONE = dict(type='TimmViT', model_name='test_vit', pretrained=False, checkpoint=None, random_init=True,
                     frozen=True)  # patch 16, 64 channels
TINY_UPSAMPLER = dict(type='JAFAR', v_dim=None, qk_dim=16, num_heads=2)


def write_images(folder: str, n: int = 8, seed: int = 0, size=(96, 120)) -> None:
    """``n`` smooth random RGB images in an ImageNet-like ``<class>/<name>.png`` layout under ``folder``."""
    rng = np.random.default_rng(seed)
    for i in range(n):
        sub = osp.join(folder, f'class_{i % 2}')
        os.makedirs(sub, exist_ok=True)
        small = rng.integers(0, 256, size=(6, 8, 3), dtype=np.uint8)
        Image.fromarray(small).resize(size[::-1], Image.BICUBIC).save(osp.join(sub, f'img_{i:02d}.png'))


def tiny_cfg(work_dir: str, data_root: str, max_iters: int, batch_size: int = 2, ckpt_interval: Optional[int] = None,
             optimizer: Optional[dict] = None, consistency_weight: float = 0.0, random_crop_scale=None,
             img_size: int = 128, seed: int = 0) -> Config:
    """The real base config with the tiny model, CPU data loading and a short schedule."""
    cfg = Config.fromfile(BASE_CONFIG)
    cfg.merge_from_dict(dict(
        work_dir=work_dir, img_size=img_size,
        model=dict(backbone=TINY_BACKBONE, upsampler=TINY_UPSAMPLER, consistency_weight=consistency_weight,
                   consistency_size=(32, 32), blur_prob=1.0, noise_prob=1.0, seed=seed),
        train_dataloader=dict(batch_size=batch_size, num_workers=0, persistent_workers=False, pin_memory=False,
                              dataset=dict(data_root=data_root, img_size=img_size,
                                           random_crop_scale=random_crop_scale)),
        train_cfg=dict(max_iters=max_iters),
        param_scheduler=[dict(type='ConstantLR', factor=1.0, by_epoch=False, begin=0, end=max_iters)],
        default_hooks=dict(logger=dict(interval=1),
                           checkpoint=dict(interval=ckpt_interval or max_iters, max_keep_ckpts=10)),
        visualizer=dict(vis_backends=[dict(type='LocalVisBackend')]),
        randomness=dict(seed=seed),
    ))
    if optimizer is not None:
        cfg.optim_wrapper.optimizer = optimizer
    return cfg
