"""The command line: train, resume, export (tiny backbone, a few iterations)."""
import os
import os.path as osp
import subprocess
import sys

import pytest

from ..test_engine.pretrain_utils import BASE_CONFIG, REPO, TINY_BACKBONE, TINY_UPSAMPLER, write_images


@pytest.mark.slow
def test_cli_train_resume_export(tmp_path):
    images = tmp_path / 'images'
    write_images(str(images), n=4)
    config = tmp_path / 'tiny.py'
    config.write_text(
        f'_base_ = [{BASE_CONFIG!r}]\n'
        f'model = dict(backbone={TINY_BACKBONE!r}, upsampler={TINY_UPSAMPLER!r})\n'
        f'train_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False, pin_memory=False,\n'
        f'                        dataset=dict(data_root={str(images)!r}, img_size=96))\n'
        "visualizer = dict(vis_backends=[dict(type='LocalVisBackend')])\n"
        "default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=2))\n")
    work = tmp_path / 'work'
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get('PYTHONPATH', ''))
    cmd = [sys.executable, osp.join(REPO, 'tools', 'pretrain_jafar.py'), str(config), '--work-dir', str(work)]
    first = subprocess.run(cmd + ['--cfg-options', 'train_cfg.max_iters=2'], env=env, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr[-3000:]
    assert (work / 'iter_2.pth').is_file() and (work / 'jafar_test_vit.pth').is_file()
    second = subprocess.run(cmd + ['--resume', '--cfg-options', 'train_cfg.max_iters=4'], env=env,
                            capture_output=True, text=True)
    assert second.returncode == 0, second.stderr[-3000:]
    out = second.stdout + second.stderr
    assert 'Auto resumed from the latest checkpoint' in out and (work / 'iter_4.pth').is_file()
    assert 'training steps: 4' in (work / 'jafar_test_vit.md').read_text()
    bad = subprocess.run(cmd + ['--amp'], env=env, capture_output=True, text=True)
    if not __import__('torch').cuda.is_available():
        assert bad.returncode != 0 and 'needs a CUDA GPU' in bad.stderr
