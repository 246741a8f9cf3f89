#!/usr/bin/env python
"""Runtime and peak memory of every registered upsampler (the JAFAR paper's Tables 12-13 layout).

Batch 1, a 448² guidance image, 32×32 input features with 384 channels, outputs 56², 112², 224², 448² (CPU) or
448², 896² (CUDA), forward and forward+backward, float32 (and bfloat16 autocast on CUDA), plus a 64×64 -> 1024²
row; prints a markdown table and JAFAR's lean/naive ratios. JAFAR gets two rows: the lean default and the naive
path (the official module's order of operations and materialised attention), the baseline of the ratios. Each
case runs in a fresh process. On CUDA, times come from CUDA events (median of --repeats after a warm-up call) and
memory from torch.cuda.max_memory_allocated; on CPU, wall time and the peak resident memory of the process.
Needs only torch, mmengine and this project.

Examples:
    python tools/benchmark_upsamplers.py                          # everything
    python tools/benchmark_upsamplers.py --methods JAFAR --sizes 448 --passes fwd
    python tools/benchmark_upsamplers.py --device cuda --methods JAFAR,NAF --no-large   # 448², 896²; fp32, bf16
    python tools/benchmark_upsamplers.py --methods JAFAR,Bilinear --image-size 64 --feat-size 4 --sizes 16 --no-large
"""
import argparse
import json
from pathlib import Path

import torch

from mmjafar.models.upsamplers.builder import registered_upsamplers
from mmjafar.utils.benchmark import DTYPES, Case, compute_floor, format_table, run_case


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--methods', default='all',
                   help='comma-separated registry names (default: all registered upsamplers); JAFAR gets a lean '
                        'and a naive row')
    p.add_argument('--sizes', default=None,
                   help='output sizes (square); default 56,112,224,448 on CPU, 448,896 on CUDA')
    p.add_argument('--passes', default='fwd,fwd+bwd', help="fwd, fwd+bwd, or both (fwd,fwd+bwd or 'both')")
    p.add_argument('--image-size', type=int, default=448)
    p.add_argument('--feat-size', type=int, default=32)
    p.add_argument('--channels', type=int, default=384)
    p.add_argument('--no-large', action='store_true', help='skip the 64² -> 1024² row')
    p.add_argument('--dtypes', default=None,
                   help="comma-separated: fp32, bf16 (autocast); default fp32 on CPU, fp32,bf16 on CUDA")
    p.add_argument('--naive-limit-gb', type=float, default=None,
                   help='skip JAFAR-naive cases whose materialised attention alone would exceed this (default: 12 '
                        'on CPU, which has no OOM safety net; 80%% of the GPU memory on CUDA); the row then says so')
    p.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    p.add_argument('--threads', type=int, default=None, help='torch CPU threads (default: torch default)')
    p.add_argument('--repeats', type=int, default=3)
    p.add_argument('--in-process', action='store_true',
                   help='measure in this process instead of a fresh one per case (quick checks; CPU peaks less '
                        'reliable)')
    p.add_argument('--floor', action='store_true',
                   help="also print JAFAR's compute floor per forward case: its matrix-product and convolution "
                        "work and its softmax elements (counted on one call) at this machine's measured matmul and "
                        'softmax rates, and the largest speed-up over the naive row it allows')
    p.add_argument('--json', type=str, default=None, help='also write the raw results here')
    args = p.parse_args(argv)
    cuda = args.device.startswith('cuda')
    if args.sizes is None:
        args.sizes = '448,896' if cuda else '56,112,224,448'
    if args.dtypes is None:
        args.dtypes = 'fp32,bf16' if cuda else 'fp32'
    if args.naive_limit_gb is None:
        args.naive_limit_gb = (0.8 * torch.cuda.get_device_properties(args.device).total_memory / 2**30 if cuda
                               else 12.0)
    return args


def naive_attention_gb(feat: int, out: int, backward: bool, heads: int = 4) -> float:
    """Bytes of the materialised per-head and averaged weights (x3 with autograd), in GiB."""
    return (heads + 1) * feat**2 * out**2 * 4 * (3 if backward else 1) / 2**30


def main(argv=None):
    args = parse_args(argv)
    methods = registered_upsamplers() if args.methods == 'all' else args.methods.split(',')
    names = ['fwd', 'fwd+bwd'] if args.passes == 'both' else args.passes.split(',')
    unknown = sorted(set(names) - {'fwd', 'fwd+bwd'})
    if unknown:
        raise SystemExit(f"--passes: unknown pass {', '.join(unknown)}; use fwd, fwd+bwd or both")
    passes = [p == 'fwd+bwd' for p in names]
    dtypes = args.dtypes.split(',')
    bad = sorted(set(dtypes) - set(DTYPES))
    if bad:
        raise SystemExit(f"--dtypes: unknown {', '.join(bad)}; use {', '.join(DTYPES)}")
    geoms = [(args.feat_size, int(s)) for s in args.sizes.split(',')]
    if not args.no_large:
        geoms.append((2 * args.feat_size, 1024 * args.feat_size // 32))
    rows = []
    for method in methods:
        rows.append((method, {}, method))
        if method == 'JAFAR':
            rows.append((method, dict(impl='naive'), 'JAFAR (naive)'))
    print(f'device: {args.device}'
          + (f' ({torch.cuda.get_device_name()})' if args.device.startswith('cuda') else
             f', {args.threads or torch.get_num_threads()} threads'), flush=True)
    results = []
    for dtype in dtypes:
        for backward in passes:
            for feat, out in geoms:
                for method, kwargs, label in rows:
                    case = Case(method=method, kwargs=kwargs, label=label, image_size=args.image_size,
                                feat_size=feat, channels=args.channels, output_size=out, backward=backward,
                                device=args.device, repeats=args.repeats, threads=args.threads, dtype=dtype)
                    if (kwargs.get('impl') == 'naive'
                            and naive_attention_gb(feat, out, backward) > args.naive_limit_gb):
                        res = dict(case=case.__dict__, ok=False,
                                   error=f'skipped: > {args.naive_limit_gb:g} GB (--naive-limit-gb)')
                    else:
                        res = run_case(case, in_process=args.in_process)
                    results.append(res)
                    print(format_table([res]).splitlines()[-1], flush=True)
    print()
    print(format_table(results))

    def key(r):
        c = r['case']
        return c['feat_size'], c['output_size'], c['backward'], c.get('dtype', 'fp32')

    lean = {key(r): r for r in results if r['case']['label'] == 'JAFAR' and r['ok']}
    naive = {key(r): r for r in results if r['case']['label'] == 'JAFAR (naive)' and r['ok']}
    common = sorted(set(lean) & set(naive))
    if common:
        print('\nJAFAR lean / naive (same run)')
        print('| features -> output | pass | dtype | time ratio | speed-up | peak memory ratio |\n'
              '|---|---|---|---:|---:|---:|')
        for k in common:
            l, n = lean[k], naive[k]
            print(f"| {k[0]}² -> {k[1]}² | {'fwd+bwd' if k[2] else 'fwd'} | {k[3]} | "
                  f"{l['time_ms'] / n['time_ms']:.3f} | {n['time_ms'] / l['time_ms']:.1f}x | "
                  + (f"{l['peak_mb'] / n['peak_mb']:.3f} |" if n['peak_mb'] >= 1 else '– |'))
    if args.floor:
        print_floor(args, lean, naive)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1, default=str))
    return results


def print_floor(args, lean: dict, naive: dict) -> None:
    """The compute floor of each measured JAFAR forward (fp32) next to its lean and naive times."""
    keys = sorted(k for k in lean if not k[2] and k[3] == 'fp32')
    if not keys:
        print('\n--floor: no fp32 forward JAFAR row was measured')
        return
    print('\nJAFAR compute floor (fp32 forward: its matrix products and convolutions at the measured matmul rate, '
          'plus its softmax elements at the measured softmax rate)')
    print('| features -> output | work (GFLOP) | matmul rate (GFLOP/s) | softmax (G elements) | softmax rate (G/s) '
          '| floor (ms) | lean (ms) | lean / floor | naive (ms) | largest possible speed-up |\n'
          '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|')
    for k in keys:
        case = Case(**{**lean[k]['case'], 'repeats': 1})
        n = naive.get(k)
        f = compute_floor(case, n['time_ms'] if n else None, lean[k]['time_ms'])
        print(f"| {k[0]}² -> {k[1]}² | {f['gflop']:.1f} | {f['rate_gflops']:.0f} | {f['softmax_g']:.3f} | "
              f"{f['softmax_rate_g']:.2f} | {f['floor_ms']:.0f} | {lean[k]['time_ms']:.0f} | "
              f"{f['lean_over_floor']:.2f} | "
              + (f"{n['time_ms']:.0f} | {f['max_speedup']:.1f}x |" if n else '– | – |'), flush=True)
        print('  work per operator (GFLOP): ' + ', '.join(f'{op} {g:.1f}' for op, g in f['per_op_gflop'].items()))


if __name__ == '__main__':
    main()
