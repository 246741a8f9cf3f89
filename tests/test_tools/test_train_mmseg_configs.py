"""tools/train.py on the configs/mmseg leaves: one training iteration and one validation pass on a tiny ADE20K."""
import os
import subprocess
import sys

import pytest

from mmjafar.testing import make_ade20k

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TINY = """
_base_ = ['{base}']
crop = {crop}
data_root = '{root}'
model = dict(data_preprocessor=dict(size=(crop, crop)), pretrained=None, backbone=dict(init_cfg=None{backbone}){model})
load = dict(type='LoadAnnotations', reduce_zero_label=True)
resize = dict(type='Resize', scale=(crop, crop), keep_ratio=False)
train_pipe = [dict(type='LoadImageFromFile'), load, resize, dict(type='PackSegInputs')]
val_pipe = [dict(type='LoadImageFromFile'), resize, load, dict(type='PackSegInputs')]  # labels at their own size
train_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False, sampler=dict(shuffle=False),
                        dataset=dict(data_root=data_root, pipeline=train_pipe))
val_dataloader = dict(batch_size=1, num_workers=0, persistent_workers=False,
                      dataset=dict(data_root=data_root, pipeline=val_pipe))
test_dataloader = val_dataloader
train_cfg = dict(max_iters=1, val_interval=1)
param_scheduler = []
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=1))
"""
VIT = ", num_layers=4, out_indices=(0, 1, 2, 3), img_size=(crop, crop)"
NO_CKPT = ", neck=dict(upsampler=dict(init_cfg=None))"
# one leaf per method family and model: attention (JAFAR, NAF, AnyUp), bilateral (JBU), kernel prediction
# (CARAFE), similarity (SAPA), point sampling (DySample), and the CNN with a neck chain
CASES = {
    'upernet_vit-b16_jafar': (64, VIT, ''),
    'upernet_vit-b16_naf': (160, VIT, NO_CKPT),
    'upernet_vit-b16_anyup': (64, VIT, NO_CKPT),
    'segformer_mit-b1_jbu': (64, '', ''),
    'segformer_mit-b1_carafe': (64, '', ''),
    'segformer_mit-b1_sapa': (64, '', ''),
    'segformer_mit-b1_dysample': (64, '', ''),
    'fpn_r50_jafar': (64, ', depth=18', ''),
}
SCHEDULES = {'upernet': '8xb2-80k', 'segformer': '8xb2-160k', 'fpn': '4xb4-160k'}


@pytest.fixture(scope='module')
def ade_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('data') / 'ADEChallengeData2016')
    make_ade20k(root, num_train=2, num_val=1, size=(48, 56))
    return root


@pytest.mark.slow
@pytest.mark.parametrize('leaf', sorted(CASES))
def test_train_one_iteration_and_validate(ade_root, tmp_path, leaf):
    crop, backbone, model = CASES[leaf]
    if leaf.startswith('fpn'):  # ResNet-18 widths for the FPN
        model = ", neck=[dict(type='FPN', in_channels=[64, 128, 256, 512], out_channels=256, num_outs=4), " \
                "dict(type='GuidedAlignNeck', in_channels=[256] * 4, upsampler=dict(type='JAFAR'))]"
    base = os.path.join(REPO, 'configs/mmseg', f'{leaf}_{SCHEDULES[leaf.split("_")[0]]}_ade20k-512x512.py')
    cfg = tmp_path / 'tiny.py'
    cfg.write_text(TINY.format(base=base, crop=crop, root=ade_root, backbone=backbone, model=model))
    work = tmp_path / 'work'
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get('PYTHONPATH', ''))
    proc = subprocess.run([sys.executable, os.path.join(REPO, 'tools/train.py'), str(cfg), '--work-dir', str(work)],
                          cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=900)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    assert 'Iter(train) [1/1]' in log and 'mIoU' in log
    assert (work / 'iter_1.pth').is_file()
