"""The core runs where only torch and mmengine exist (e.g. a GPU machine without mmcv)."""
import subprocess
import sys

BLOCKER = r'''
import sys, importlib.abc
BLOCKED = {"mmcv", "mmseg", "mmdet", "mmdet3d", "timm", "nuscenes"}
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"blocked for this test: {name}")
sys.meta_path.insert(0, Block())
import torch
import mmjafar
from mmjafar.registry import MODELS
from mmjafar.models.upsamplers import BaseUpsampler
names = [n for n, c in MODELS.module_dict.items() if isinstance(c, type) and issubclass(c, BaseUpsampler)]
up = MODELS.build(dict(type="JAFAR", v_dim=8, qk_dim=32))
out = up(torch.randn(1, 3, 16, 16), torch.randn(1, 8, 4, 4), (8, 8))
assert out.shape == (1, 8, 8, 8)
assert not any(m.split(".")[0] in BLOCKED for m in sys.modules)
print(len(names))
'''


def test_core_imports_without_openmmlab_adapters_or_timm():
    proc = subprocess.run([sys.executable, '-c', BLOCKER], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert int(proc.stdout.strip().splitlines()[-1]) >= 10  # every upsampler registered from the core alone
