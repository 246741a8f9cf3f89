import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mmjafar.evaluation.cam_metrics import CAM_METRICS

REPO = Path(__file__).resolve().parents[2]


def test_eval_cam_cli(tmp_path):
    rng = np.random.default_rng(0)
    for c in ('a', 'b'):
        (tmp_path / 'data' / c).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(tmp_path / 'data' / c / f'{i}.png')
    # folders a, b are classes 0, 1 of a tiny random 2-class classifier whose head bias makes it answer class 0
    # for every image (its weights stay random, so the CAM gradients are not trivial): exactly the three images
    # of folder a are correctly classified and scored
    (tmp_path / 'index.json').write_text(json.dumps({'a': 0, 'b': 1}))
    out = tmp_path / 'res.json'
    code = ('import runpy, sys, timm, torch\n'
            'sys.argv[0] = "eval_cam"\n'
            'orig = timm.create_model\n'
            'def create(name, **kw):\n'
            '    m = orig(name, **{**kw, "depth": 1, "embed_dim": 32, "num_heads": 2, "num_classes": 2, '
            '"img_size": 32})\n'
            '    m.head.bias.data = torch.tensor([50.0, -50.0])\n'
            '    return m\n'
            'timm.create_model = create\n'
            f'runpy.run_path("{REPO}/tools/eval_cam.py", run_name="__main__")\n')
    cmd = [sys.executable, '-c', code, str(tmp_path / 'data'), '--random-init', '--class-index',
           str(tmp_path / 'index.json'), '--upsamplers', 'bilinear,nearest', '--num-images', '0', '--cam-size', '32',
           '--batch-size', '2', '--workers', '0', '--device', 'cpu', '--out', str(out)]
    # runpy (used to patch timm first) does not put the script's folder on the path as `python tools/x.py` does
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=300,
                         env={'PYTHONPATH': f'{REPO}:{REPO}/tools', 'HF_HUB_OFFLINE': '1', 'PATH': '/usr/bin:/bin'})
    assert res.returncode == 0, res.stderr[-2000:]
    results = json.loads(out.read_text())
    assert set(results) == {'Bilinear', 'Nearest'}
    for r in results.values():
        assert r['num_candidates'] == 6 and r['num_images'] == 3 and r['accuracy'] == 50.0
        assert [Path(rec['path']).parent.name for rec in r['per_image']] == ['a'] * 3
        for rec in r['per_image']:
            assert rec['label'] == 0
            for key in CAM_METRICS:  # per-image fractions; Coherency, Complexity may exceed 1 only slightly
                assert math.isfinite(rec[key]), (key, rec)
        for key in ('A.D', 'A.I', 'Complexity'):
            assert 0.0 <= r[key] <= 100.0, (key, r[key])
            assert r[key] == pytest.approx(100 * sum(rec[key] for rec in r['per_image']) / 3)
    assert results['Bilinear']['per_image'][0]['path'] == results['Nearest']['per_image'][0]['path']
    # the two upsamplers give different CAMs, hence different metrics on the same images
    assert any(results['Bilinear'][k] != results['Nearest'][k] for k in CAM_METRICS)
    assert '| Bilinear |' in res.stdout
