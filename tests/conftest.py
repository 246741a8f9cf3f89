import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
# ../shared beside the checkout; MMJAFAR_SHARED overrides; /work/shared is where this workplace mounts it.
_CANDIDATES = [Path(p) for p in (os.environ.get('MMJAFAR_SHARED'), REPO.parent / 'shared', '/work/shared') if p]
SHARED = next((p for p in _CANDIDATES if (p / 'golden').is_dir()), _CANDIDATES[0])
GOLDEN = SHARED / 'golden'


def pytest_configure(config):
    config.addinivalue_line('markers', 'slow: heavier end-to-end runs (still run by .ci/run)')
    torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture(scope='session')
def golden_dir() -> Path:
    """``../shared/golden`` (override with MMJAFAR_SHARED). Parity tests need it: fail loudly if absent."""
    if not GOLDEN.is_dir():
        raise FileNotFoundError(f'golden fixtures not found at {GOLDEN}; set MMJAFAR_SHARED to the shared folder')
    return GOLDEN


def load_golden(path: Path) -> dict:
    return torch.load(path, weights_only=True)


def build_golden(golden_dir: Path, folder: str, cls, name: str, **kwargs):
    """Build ``cls`` from a golden file's constructor (``kwargs`` override), load its state dict strictly, eval."""
    data = load_golden(golden_dir / folder / name)
    model = cls(**{**data['constructor'], **kwargs}).eval()
    model.load_state_dict(data['state_dict'])  # strict
    return model, data


def assert_golden_output(model, data, atol: float = 1e-4, rtol: float = 1e-4) -> None:
    """Run ``model(image, features, output_size)`` on the golden inputs and compare with the official output."""
    inputs = data['inputs']
    with torch.no_grad():
        out = model(inputs['image'], inputs['features'], inputs['output_size'])
    assert out.shape == data['output'].shape
    torch.testing.assert_close(out, data['output'], atol=atol, rtol=rtol)
