"""tools/train.py and tools/test.py end to end on a generated ADE20K: the one-line JAFAR neck, and bilinear."""
import json
import os
import subprocess
import sys

import pytest
import torch

from mmjafar.engine import runner_checkpoint_loading
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
# three epochs of 2 iterations with a cosine schedule, a checkpoint every epoch, no validation, a fixed seed
RESUME_SCHEDULE = """
train_cfg = dict(max_epochs=3, val_interval=100)
param_scheduler = [dict(type='CosineAnnealingLR', T_max=3, by_epoch=True, begin=0, end=3)]
default_hooks = dict(checkpoint=dict(interval=1, max_keep_ckpts=3, save_best=None))
randomness = dict(seed=0)
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


def _state(path):
    """Weights, optimizer state, scheduler state and loop position of a Runner checkpoint."""
    with runner_checkpoint_loading():
        ckpt = torch.load(path, map_location='cpu')
    return ckpt['state_dict'], ckpt['optimizer'], ckpt['param_schedulers'], (ckpt['meta']['epoch'],
                                                                            ckpt['meta']['iter'])


def _assert_same(a, b, where=''):
    """Bitwise equality of nested checkpoint entries."""
    if torch.is_tensor(a):
        assert torch.is_tensor(b) and a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), where
        for key in a:
            _assert_same(a[key], b[key], f'{where}.{key}')
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_same(x, y, f'{where}[{i}]')
    else:
        assert a == b, (where, a, b)


@pytest.mark.slow
def test_resume_is_bitwise_equal_to_an_uninterrupted_run(ade_root, tmp_path):
    """Stopped after epoch 1 and resumed with --resume, training ends with exactly the weights, AdamW moments,
    cosine-schedule state and iteration count of a run that was never interrupted."""
    base, neck = NECKS['jafar']
    cfg = tmp_path / 'tiny_resume.py'
    cfg.write_text(TINY.format(base=os.path.join(REPO, base), root=ade_root, neck=neck) + RESUME_SCHEDULE)
    train = os.path.join(REPO, 'tools/train.py')
    run([train, str(cfg), '--work-dir', str(tmp_path / 'straight')], cwd=str(tmp_path))
    run([train, str(cfg), '--work-dir', str(tmp_path / 'split'), '--cfg-options', 'train_cfg.max_epochs=1'],
        cwd=str(tmp_path))
    log = run([train, str(cfg), '--work-dir', str(tmp_path / 'split'), '--resume'], cwd=str(tmp_path))
    assert 'resumed epoch: 1, iter: 2' in log
    straight, split = _state(tmp_path / 'straight' / 'epoch_3.pth'), _state(tmp_path / 'split' / 'epoch_3.pth')
    assert straight[3] == split[3] == (3, 6)
    weights = straight[0]
    assert weights and any(k.startswith('decode_head.') for k in weights)
    _assert_same(straight, split)
    # the comparison has teeth: the interrupted run's epoch-1 weights differ from the final ones
    first = _state(tmp_path / 'split' / 'epoch_1.pth')[0]
    assert any(not torch.equal(first[k], weights[k]) for k in weights if k.startswith('decode_head.'))


@pytest.mark.skipif(torch.cuda.is_available(), reason='checks the CPU-only refusal')
def test_amp_without_gpu_is_refused(tmp_path):
    env = dict(os.environ, PYTHONPATH=REPO)
    cfg = os.path.join(REPO, 'configs/linear_probe/bilinear_vit-s14-dinov2_1xb4-20e_ade20k-448x448.py')
    proc = subprocess.run([sys.executable, os.path.join(REPO, 'tools/train.py'), cfg, '--amp', '--work-dir',
                           str(tmp_path)], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0 and 'needs a CUDA GPU' in proc.stderr
