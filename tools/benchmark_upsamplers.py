#!/usr/bin/env python
"""Runtime and peak memory of every registered upsampler (the JAFAR paper's Tables 12-13 layout).

Batch 1, a 448² guidance image, 32×32 input features with 384 channels, outputs 56², 112², 224², 448²,
forward and forward+backward, plus a 64×64 -> 1024² row; prints a markdown table and JAFAR's lean/naive
ratios. CPU by default (CUDA when available, or --device). Each case runs in a fresh process.

Examples:
    python tools/benchmark_upsamplers.py                          # everything
    python tools/benchmark_upsamplers.py --methods JAFAR --sizes 448 --passes fwd
    python tools/benchmark_upsamplers.py --methods JAFAR,Bilinear --image-size 64 --feat-size 4 --sizes 16 --no-large
"""
import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from mmjafar.utils.benchmark import Case, format_table, registered_upsamplers, run_case  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--methods', default='all',
                   help='comma-separated registry names (default: all registered upsamplers); JAFAR gets a lean '
                        'and a naive row')
    p.add_argument('--sizes', default='56,112,224,448', help='output sizes (square)')
    p.add_argument('--passes', default='fwd,fwd+bwd', help="fwd, fwd+bwd, or both (fwd,fwd+bwd or 'both')")
    p.add_argument('--image-size', type=int, default=448)
    p.add_argument('--feat-size', type=int, default=32)
    p.add_argument('--channels', type=int, default=384)
    p.add_argument('--no-large', action='store_true', help='skip the 64² -> 1024² row')
    p.add_argument('--naive-limit-gb', type=float, default=12.0,
                   help='skip JAFAR-naive cases whose materialised attention alone would exceed this (CPU '
                        'machines have no OOM safety net); the row then says so')
    p.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    p.add_argument('--threads', type=int, default=None, help='torch CPU threads (default: torch default)')
    p.add_argument('--repeats', type=int, default=3)
    p.add_argument('--json', type=str, default=None, help='also write the raw results here')
    return p.parse_args(argv)


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
    for backward in passes:
        for feat, out in geoms:
            for method, kwargs, label in rows:
                case = Case(method=method, kwargs=kwargs, label=label, image_size=args.image_size, feat_size=feat,
                            channels=args.channels, output_size=out, backward=backward, device=args.device,
                            repeats=args.repeats, threads=args.threads)
                if kwargs.get('impl') == 'naive' and naive_attention_gb(feat, out, backward) > args.naive_limit_gb:
                    res = dict(case=case.__dict__, ok=False,
                               error=f'skipped: > {args.naive_limit_gb:g} GB (--naive-limit-gb)')
                else:
                    res = run_case(case)
                results.append(res)
                print(format_table([res]).splitlines()[-1], flush=True)
    print()
    print(format_table(results))
    lean = {(r['case']['feat_size'], r['case']['output_size'], r['case']['backward']): r for r in results
            if r['case']['label'] == 'JAFAR' and r['ok']}
    naive = {(r['case']['feat_size'], r['case']['output_size'], r['case']['backward']): r for r in results
             if r['case']['label'] == 'JAFAR (naive)' and r['ok']}
    common = sorted(set(lean) & set(naive))
    if common:
        print('\nJAFAR lean / naive')
        print('| features -> output | pass | time ratio | peak memory ratio |\n|---|---|---:|---:|')
        for key in common:
            l, n = lean[key], naive[key]
            print(f"| {key[0]}² -> {key[1]}² | {'fwd+bwd' if key[2] else 'fwd'} | "
                  f"{l['time_ms'] / n['time_ms']:.2f} | {l['peak_mb'] / max(n['peak_mb'], 1e-9):.3f} |")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1, default=str))
    return results


if __name__ == '__main__':
    main()
