"""tools/train.py and tools/test.py end to end on a generated ADE20K: the one-line JAFAR neck, and bilinear."""
import json
import os
import subprocess
import sys

import pytest
import torch

from mmjafar.testing import make_ade20k

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TINY = """
_base_ = ['{base}']
crop = 56
data_root = '{root}'
model = dict(
    data_preprocessor=dict(size=(crop, crop)),
    backbone=dict(pretrained=False, random_init=True, model_kwargs=dict(depth=1)),
    {neck})
pipe = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='ResizeShortestEdge', scale=crop, max_size=100000),
    dict(type='CenterCrop', crop_size=crop),
    dict(type='EvalAtCurrentSize'),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False,
                        dataset=dict(data_root=data_root, pipeline=pipe))
val_dataloader = dict(num_workers=0, persistent_workers=False, dataset=dict(data_root=data_root, pipeline=pipe))
test_dataloader = val_dataloader
train_cfg = dict(max_epochs=1, val_interval=1)
param_scheduler = []
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=1, save_best=None))
env_cfg = dict(mp_cfg=dict(mp_start_method='fork'))
"""
NECKS = {
    'jafar': ('configs/linear_probe/jafar_vit-s14-dinov2_1xb4-20e_ade20k-448x448.py',
              "neck=dict(_delete_=True, type='JAFAR', v_dim=384, qk_dim=16, num_heads=2, frozen=True)"),
    'bilinear': ('configs/linear_probe/bilinear_vit-s14-dinov2_1xb4-20e_ade20k-448x448.py',
                 "neck=dict(type='Bilinear')"),
}


@pytest.fixture(scope='module')
def ade_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('data') / 'ADEChallengeData2016')
    make_ade20k(root, num_train=4, num_val=2, size=(60, 70))
    return root


def run(args, cwd):
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get('PYTHONPATH', ''))
    proc = subprocess.run([sys.executable] + args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


@pytest.mark.slow
@pytest.mark.parametrize('method', sorted(NECKS))
def test_train_then_test_reports_miou(ade_root, tmp_path, method):
    base, neck = NECKS[method]
    cfg = tmp_path / f'tiny_{method}.py'
    cfg.write_text(TINY.format(base=os.path.join(REPO, base), root=ade_root, neck=neck))
    work = tmp_path / 'work'
    log = run([os.path.join(REPO, 'tools/train.py'), str(cfg), '--work-dir', str(work)], cwd=str(tmp_path))
    assert 'mIoU' in log and (work / 'epoch_1.pth').is_file()
    out = tmp_path / 'metrics.json'
    run([os.path.join(REPO, 'tools/test.py'), str(cfg), str(work / 'epoch_1.pth'), '--work-dir', str(work),
         '--out', str(out)], cwd=str(tmp_path))
    metrics = json.loads(out.read_text())
    assert 0.0 <= metrics['mIoU'] <= 100.0 and 'aAcc' in metrics
    # resuming from the work dir continues after the finished epoch instead of starting over
    log = run([os.path.join(REPO, 'tools/train.py'), str(cfg), '--work-dir', str(work), '--resume'], cwd=str(tmp_path))
    assert 'resumed epoch: 1' in log


@pytest.mark.skipif(torch.cuda.is_available(), reason='checks the CPU-only refusal')
def test_amp_without_gpu_is_refused(tmp_path):
    env = dict(os.environ, PYTHONPATH=REPO)
    cfg = os.path.join(REPO, 'configs/linear_probe/bilinear_vit-s14-dinov2_1xb4-20e_ade20k-448x448.py')
    proc = subprocess.run([sys.executable, os.path.join(REPO, 'tools/train.py'), cfg, '--amp', '--work-dir',
                           str(tmp_path)], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0 and 'needs a CUDA GPU' in proc.stderr
