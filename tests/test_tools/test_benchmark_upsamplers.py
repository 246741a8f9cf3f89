"""tools/benchmark_upsamplers.py: pass selection and one tiny measured case per pass (fresh subprocesses)."""
import importlib.util
import os

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _tool():
    spec = importlib.util.spec_from_file_location('benchmark_upsamplers',
                                                  os.path.join(REPO, 'tools', 'benchmark_upsamplers.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    return tool


def test_both_passes_are_measured(capsys):
    results = _tool().main(['--methods', 'Bilinear', '--passes', 'both', '--image-size', '32', '--feat-size', '4',
                            '--sizes', '16', '--no-large', '--channels', '8', '--repeats', '1', '--threads', '1'])
    assert [r['case']['backward'] for r in results] == [False, True]
    assert all(r['ok'] and r['peak_mb'] >= 0 and r['time_ms'] > 0 for r in results), results
    assert '| Bilinear | 4² -> 16² | fwd+bwd |' in capsys.readouterr().out


def test_unknown_pass_is_an_error():
    with pytest.raises(SystemExit, match='unknown pass bwd'):
        _tool().main(['--passes', 'fwd,bwd'])
