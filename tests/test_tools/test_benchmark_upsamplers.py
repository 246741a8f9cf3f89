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
    """The measured peak covers what the call must hold: the 64 MiB output (64 x 512 x 512 float32), and with the
    backward pass its gradient too (measured 69 and 135 MiB)."""
    results = _tool().main(['--methods', 'Bilinear', '--passes', 'both', '--image-size', '32', '--feat-size', '8',
                            '--sizes', '512', '--no-large', '--channels', '64', '--repeats', '1', '--threads', '1'])
    assert [r['case']['backward'] for r in results] == [False, True]
    assert all(r['ok'] and r['time_ms'] > 0 and r['shape'] == (1, 64, 512, 512) for r in results), results
    fwd, bwd = (r['peak_mb'] for r in results)
    assert 64 <= fwd < 2 * 64, fwd
    assert 2 * 64 <= bwd < 4 * 64, bwd
    assert '| Bilinear | 8² -> 512² | fwd+bwd |' in capsys.readouterr().out


def test_unknown_pass_is_an_error():
    with pytest.raises(SystemExit, match='unknown pass bwd'):
        _tool().main(['--passes', 'fwd,bwd'])


def test_device_path_on_cpu(capsys):
    """The --device path the GPU benchmark takes (lean and naive JAFAR, both passes, fp32 and bf16 autocast),
    run on CPU at toy sizes in this process."""
    results = _tool().main(['--device', 'cpu', '--methods', 'JAFAR', '--image-size', '32', '--feat-size', '4',
                            '--sizes', '16,32', '--no-large', '--channels', '16', '--passes', 'both',
                            '--dtypes', 'fp32,bf16', '--repeats', '1', '--threads', '1', '--in-process'])
    assert len(results) == 2 * 2 * 2 * 2  # dtypes x passes x sizes x (lean, naive)
    assert all(r['ok'] and r['time_ms'] > 0 and len(r['times_ms']) == 2 for r in results), results
    assert {r['out_dtype'] for r in results if r['case']['dtype'] == 'bf16' and not r['case']['backward']} \
        <= {'bfloat16', 'float32'}
    assert {r['shape'] for r in results} == {(1, 16, 16, 16), (1, 16, 32, 32)}
    out = capsys.readouterr().out
    assert '| JAFAR (naive) | 4² -> 32² | fwd+bwd | bf16 |' in out
    assert 'JAFAR lean / naive (same run)' in out and '| 4² -> 16² | fwd | fp32 |' in out


def test_unknown_dtype_is_an_error():
    with pytest.raises(SystemExit, match='unknown fp16'):
        _tool().main(['--dtypes', 'fp32,fp16'])


def test_compute_floor(capsys):
    """--floor counts the forward's matrix-product work on a real call (the out= products of the lean path
    included: the 3x3 query convolution and the attention's probabilities times the features are both there) and
    its softmax elements, and prints them with the measured matmul and softmax rates."""
    from mmjafar.utils.benchmark import Case, forward_work
    case = Case(method='JAFAR', image_size=32, feat_size=4, channels=16, output_size=24, threads=1)
    flops, exps = forward_work(case)
    qk, out_px, keys = 128, 24 * 24, 4 * 4
    assert flops['convolution'] >= 2 * 9 * qk * qk * out_px  # cross_decode.conv2d (3x3)
    assert flops['mm'] >= 2 * out_px * keys * 16 + 2 * 5 * qk * qk * 32 * 32  # probs @ features, encoder 1x1s
    assert flops['bmm'] == 2 * out_px * keys * qk  # the logits of all heads
    assert exps == 4 * out_px * keys  # one exponential per head, query and key
    assert forward_work(Case(method='Bilinear', image_size=32, feat_size=4, channels=16, output_size=24)) == ({}, 0)
    _tool().main(['--methods', 'JAFAR', '--image-size', '32', '--feat-size', '4', '--sizes', '24', '--no-large',
                  '--channels', '16', '--passes', 'fwd', '--repeats', '1', '--threads', '1', '--in-process',
                  '--floor'])
    out = capsys.readouterr().out
    assert 'JAFAR compute floor' in out
    row = next(line for line in out.splitlines() if line.startswith('| 4² -> 24² |') and 'GFLOP' not in line
               and line.count('|') == 11)
    gflop, rate, softmax_g, softmax_rate, floor_ms = (float(v) for v in row.split('|')[2:7])
    assert abs(gflop - sum(flops.values()) / 1e9) < 0.05 and rate > 1 and floor_ms > 0
    assert abs(softmax_g - exps / 1e9) < 1e-3 and softmax_rate > 0.001
