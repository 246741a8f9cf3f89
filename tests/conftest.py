import copy
import functools
import os
from pathlib import Path
from typing import Dict, Optional

import pytest
import torch

#: the parity fixtures shipped with the tests (see tests/data/README.md)
DATA = Path(__file__).resolve().parent / 'data'


def pytest_configure(config):
    config.addinivalue_line('markers', 'slow: heavier end-to-end runs (still run by .ci/run)')
    torch.set_num_threads(min(2, os.cpu_count() or 1))


@functools.lru_cache(maxsize=None)
def _read_golden(method: str) -> dict:
    path = DATA / f'{method}.pt'
    if not path.is_file():
        raise FileNotFoundError(f'parity fixture {path} is missing; it is part of the repository (git checkout it)')
    return torch.load(path, weights_only=True)


def load_golden(method: str, case: Optional[str] = None) -> dict:
    """The parity fixture of ``method`` (``tests/data/<method>.pt``), or one of its cases as a flat dict.

    A case dict holds ``constructor``, ``state_dict`` (the method's official weights, shared by its cases),
    ``inputs``, ``output_shape`` and the compact ``output``: the official output restricted to
    ``output_channels`` (every 8th channel) along ``output_channel_dim``. Each call returns a fresh copy.
    """
    data = _read_golden(method)
    if case is None:
        return copy.deepcopy(data)
    if case not in data['cases']:
        raise KeyError(f'{method}.pt has no case {case!r}; cases: {sorted(data["cases"])}')
    return copy.deepcopy({**data['cases'][case], 'state_dict': data['state_dict'], 'notes': data['notes']})


def golden_cases(method: str):
    """Names of the cases of ``method``, for ``pytest.mark.parametrize``."""
    return sorted(_read_golden(method)['cases'])


def compact(out: torch.Tensor, data: Dict) -> torch.Tensor:
    """``out`` restricted to the output channels the fixture keeps (every 8th)."""
    return out.index_select(data['output_channel_dim'], data['output_channels'])


def build_golden(method: str, cls, case: str, **kwargs):
    """Build ``cls`` from a case's constructor (``kwargs`` override), load the official weights strictly, eval."""
    data = load_golden(method, case)
    model = cls(**{**data['constructor'], **kwargs}).eval()
    model.load_state_dict(data['state_dict'])  # strict
    return model, data


def assert_golden_output(model, data: Dict, out: Optional[torch.Tensor] = None, atol: float = 1e-4,
                         rtol: float = 1e-4) -> torch.Tensor:
    """Compare ``out`` (default: ``model(image, features, output_size)`` on the case's inputs) with the official
    output on the kept channels; the full output must have the official shape. Returns the full output."""
    if out is None:
        inputs = data['inputs']
        with torch.no_grad():
            out = model(inputs['image'], inputs['features'], inputs.get('output_size'))
    assert tuple(out.shape) == tuple(data['output_shape'])
    torch.testing.assert_close(compact(out, data), data['output'], atol=atol, rtol=rtol)
    return out
