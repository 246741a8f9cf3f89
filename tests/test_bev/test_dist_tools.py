"""``tools/dist_train.sh`` and ``tools/dist_test.sh`` on a BEV config: 2 processes (gloo on CPU), end to end.

Trains SimpleBEV (Low-Res row, tiny random ViT) for one epoch on the synthetic tree with 2 processes, then
evaluates the checkpoint with 2 processes and with 1 on the 3-sample mini_train split: the distributed IoU must
equal the single-process one (3 samples on 2 ranks: DefaultSampler pads and the metric must drop the copy).
"""
import json
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG = os.path.join(REPO, 'projects', 'bev', 'configs', 'simplebev',
                      'simplebev_dinov2-s14_lowres_nus-vehicle_synthetic.py')


def _options(root: str):
    return [f'train_dataloader.dataset.data_root={root}', f'val_dataloader.dataset.data_root={root}',
            f'test_dataloader.dataset.data_root={root}',
            'train_dataloader.dataset.pipeline.1.final_size=(28,60)',
            'val_dataloader.dataset.pipeline.1.final_size=(28,60)',
            'test_dataloader.dataset.pipeline.1.final_size=(28,60)',
            'model.backbone.model_kwargs.depth=1', 'train_cfg.max_epochs=1', 'default_hooks.logger.interval=1']


def _run(cmd, port: int, tmp_path):
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get('PATH', ''),
               PORT=str(port), OMP_NUM_THREADS='1')
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f'{cmd[:3]} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}'
    return proc


@pytest.mark.slow
def test_dist_train_and_dist_test_match_single_process(bev_synthetic_root, tmp_path):
    root = str(bev_synthetic_root) + '/'
    work = tmp_path / 'train'
    _run(['bash', 'tools/dist_train.sh', CONFIG, '2', '--work-dir', str(work), '--cfg-options', *_options(root)],
         29731, tmp_path)
    ckpt = work / 'epoch_1.pth'
    assert ckpt.is_file()
    scalars = [json.loads(line) for path in work.rglob('scalars.json') for line in path.read_text().splitlines()]
    assert any('bev/iou_vehicle' in s for s in scalars)  # validated after the epoch

    dist_out, single_out = tmp_path / 'dist.json', tmp_path / 'single.json'
    test_options = [*_options(root), 'test_dataloader.dataset.split=mini_train']
    _run(['bash', 'tools/dist_test.sh', CONFIG, str(ckpt), '2', '--work-dir', str(tmp_path / 'dist_test'),
          '--out', str(dist_out), '--cfg-options', *test_options], 29733, tmp_path)
    _run([sys.executable, 'tools/test.py', CONFIG, str(ckpt), '--work-dir', str(tmp_path / 'test'),
          '--out', str(single_out), '--cfg-options', *test_options], 29735, tmp_path)
    dist_iou = json.loads(dist_out.read_text())['bev/iou_vehicle']
    single_iou = json.loads(single_out.read_text())['bev/iou_vehicle']
    assert 0.0 <= single_iou <= 1.0
    assert dist_iou == pytest.approx(single_iou, abs=1e-9)
