#!/usr/bin/env python
"""Cost of mmseg segmentor configs with upsampling necks, next to the stock config, in one run.

For each config (random weights, batch 1, a SIZE x SIZE image, CPU): parameters, forward multiply-adds
(GMACs; matrix products and convolutions, custom ops included, elementwise work not counted), the median
forward time (``mode='tensor'``: backbone, neck and decode head) and the rise of peak resident memory. Each
config runs in a fresh process. The first config (or --baseline) is the reference of the added-cost and ratio
columns.

Examples:
    python tools/benchmark_segmentors.py mmseg::vit/vit_vit-b16_mln_upernet_8xb2-80k_ade20k-512x512.py \\
        configs/mmseg/upernet_vit-b16_jafar_8xb2-80k_ade20k-512x512.py
    python tools/benchmark_segmentors.py configs/mmseg/segformer_mit-b1_*.py --size 256 --json costs.json
"""
import argparse
import json

from mmjafar.evaluation.segmentor_cost import format_cost_table, measure_in_subprocess


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('configs', nargs='+', help='config files (paths or mmseg::/mmjafar:: names)')
    p.add_argument('--baseline', default=None, help='reference config (default: the first one)')
    p.add_argument('--size', type=int, default=512, help='square input size (default 512)')
    p.add_argument('--threads', type=int, default=2, help='torch CPU threads (default 2)')
    p.add_argument('--repeats', type=int, default=2, help='timed forwards after the warm-up (median)')
    p.add_argument('--json', default=None, help='also write the results to this file')
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    configs = list(args.configs)
    if args.baseline is not None and args.baseline not in configs:
        configs.insert(0, args.baseline)
    results = []
    for i, config in enumerate(configs):
        print(f'[{i + 1}/{len(configs)}] {config}', flush=True)
        results.append(measure_in_subprocess(config, args.size, args.threads, args.repeats))
    baseline = next((r for r in results if r['config'] == (args.baseline or configs[0])), results[0])
    if 'error' in baseline:
        raise SystemExit(f'the baseline config failed: {baseline["error"]}')
    print(f'\nbatch 1, {args.size}x{args.size}, CPU, {args.threads} threads, reference: {baseline["config"]}\n')
    print(format_cost_table(results, baseline))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(results, f, indent=1)
    if any('error' in r for r in results):
        raise SystemExit(1)


if __name__ == '__main__':
    main()
