import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

REPO = Path(__file__).resolve().parents[2]


def test_eval_openvocab_cli_on_tiny_ade20k(tmp_path):
    root = tmp_path / 'ADEChallengeData2016'
    (root / 'images/validation').mkdir(parents=True)
    (root / 'annotations/validation').mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(2):
        name = f'ADE_val_0000000{i}'
        Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(root / f'images/validation/{name}.jpg')
        Image.fromarray(rng.integers(0, 151, (48, 64), dtype=np.uint8)).save(
            root / f'annotations/validation/{name}.png')
    torch.save(F.normalize(torch.randn(150, 24), dim=-1), tmp_path / 'text.pt')
    out = tmp_path / 'metrics.json'
    cmd = [sys.executable, str(REPO / 'tools/eval_openvocab.py'), 'ade20k', str(root), '--upsampler', 'jafar',
           '--upsampler-args', '{"qk_dim": 32}', '--random-init', '--clip-model-args',
           '{"depth": 1, "embed_dim": 64, "num_heads": 2, "num_classes": 24, "img_size": 64}',
           '--text-embeddings', str(tmp_path / 'text.pt'), '--short-side', '48', '--workers', '0',
           '--work-dir', str(tmp_path / 'work'), '--out', str(out)]
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=300,
                         env={'PYTHONPATH': str(REPO), 'HF_HUB_OFFLINE': '1', 'PATH': '/usr/bin:/bin'})
    assert res.returncode == 0, res.stderr[-3000:]
    metrics = json.loads(out.read_text())
    assert set(metrics) >= {'aAcc', 'mIoU'} and 0 <= metrics['aAcc'] <= 100
    assert '"dataset": "ade20k"' in res.stdout
