import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[2]


def test_visualize_features_cli(tmp_path):
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (60, 80, 3), dtype=np.uint8)).save(tmp_path / 'in.png')
    out = tmp_path / 'out.png'
    cmd = [sys.executable, str(REPO / 'tools' / 'visualize_features.py'), str(tmp_path / 'in.png'), '--random-init',
           '--size', '56', '--upsamplers', 'bilinear,JAFAR', '--upsampler-args', '{"jafar": {"qk_dim": 32}}',
           '--points', '0.5,0.5', '--out', str(out)]
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=300,
                         env={'PYTHONPATH': str(REPO), 'HF_HUB_OFFLINE': '1', 'PATH': '/usr/bin:/bin'})
    assert res.returncode == 0, res.stderr[-2000:]
    assert 'saved' in res.stdout and 'JAFAR' in res.stdout
    width, height = Image.open(out).size
    # 56 x 70 image (shorter side 56, 74 -> 70 by patch 14): image, low-res, bilinear, JAFAR columns
    assert width == 4 * 70 + 3 * 4
