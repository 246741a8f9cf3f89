import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[2]


def test_eval_cam_cli(tmp_path):
    rng = np.random.default_rng(0)
    for c in ('a', 'b'):
        (tmp_path / 'data' / c).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(tmp_path / 'data' / c / f'{i}.png')
    # folders a, b are classes 0, 1 of a tiny random 2-class classifier; its predictions decide what is kept
    (tmp_path / 'index.json').write_text(json.dumps({'a': 0, 'b': 1}))
    out = tmp_path / 'res.json'
    code = ('import sys, timm; sys.argv[0] = "eval_cam"; import runpy; '
            'orig = timm.create_model; '
            'timm.create_model = lambda name, **kw: orig(name, **{**kw, "depth": 1, "embed_dim": 32, "num_heads": 2, '
            '"num_classes": 2, "img_size": 32}); '
            f'runpy.run_path("{REPO}/tools/eval_cam.py", run_name="__main__")')
    cmd = [sys.executable, '-c', code, str(tmp_path / 'data'), '--random-init', '--class-index',
           str(tmp_path / 'index.json'), '--upsamplers', 'bilinear,nearest', '--num-images', '5', '--cam-size', '32',
           '--batch-size', '2', '--workers', '0', '--device', 'cpu', '--out', str(out)]
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=300,
                         env={'PYTHONPATH': str(REPO), 'HF_HUB_OFFLINE': '1', 'PATH': '/usr/bin:/bin'})
    assert res.returncode == 0, res.stderr[-2000:]
    results = json.loads(out.read_text())
    assert set(results) == {'Bilinear', 'Nearest'}
    for r in results.values():
        assert r['num_candidates'] == 5 and 0 <= r['num_images'] <= 5
        assert len(r['per_image']) == r['num_images']
    assert results['Bilinear']['num_images'] == results['Nearest']['num_images']  # same classifier, same images
    assert '| Bilinear |' in res.stdout
