"""The README's demo config, shortened: JAFAR trained on the scikit-image photos beats bilinear on held-out ones."""
import json
import os
import os.path as osp
import subprocess
import sys

import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
ITERS = 40  # the demo runs 100; after 40, JAFAR's 1 - cos was measured 29 % (2x) and 38 % (4x) below bilinear's


@pytest.mark.slow
def test_demo_jafar_beats_bilinear_on_heldout_photos(tmp_path):
    work = tmp_path / 'work'
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get('PYTHONPATH', ''), HF_HUB_OFFLINE='1')
    cmd = [sys.executable, osp.join(REPO, 'tools', 'pretrain_jafar.py'), osp.join(REPO, 'configs', 'pretrain',
                                                                                   'jafar_demo.py'),
           '--work-dir', str(work), '--cfg-options', f'train_cfg.max_iters={ITERS}',
           f'param_scheduler.0.end={ITERS}', 'custom_hooks.1.pca_size=224']
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1200, cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    errors = json.loads((work / 'heldout_errors.json').read_text())['errors']
    assert set(errors) == {'upsampler', 'bilinear', 'nearest'}
    for scale in ('2', '4'):
        jafar, bilinear, nearest = (errors[m][scale] for m in ('upsampler', 'bilinear', 'nearest'))
        assert bilinear['cos'] < nearest['cos']  # the baselines are ordered as expected
        # JAFAR's 1 - cos on the three held-out photos is clearly below bilinear's, and so is its L2 error
        assert jafar['cos'] < 0.9 * bilinear['cos'], (scale, jafar, bilinear)
        assert jafar['l2'] < bilinear['l2'], (scale, jafar, bilinear)
    exported = [p for p in os.listdir(work) if p.startswith('jafar_') and p.endswith('.pth')]
    assert len(exported) == 1 and (work / 'heldout_pca.png').is_file()
