"""Feature-extraction cost of mmjafar timm backbones: time and peak memory of one frozen forward.

    .venv/bin/python tools/dev/benchmark_backbones.py [--size 448] [--threads 2] [--repeats 3] [MODEL ...]

Each model runs in a fresh process with random weights (the cost does not depend on the values): the model is
built, one warm-up forward runs, then ``--repeats`` timed forwards; the table gives the median time of those and
the peak increase of resident memory during the first forward (Linux ``VmHWM``, reset before it; later calls reuse
the memory the allocator keeps), output included.
"""
import argparse
import multiprocessing as mp
import statistics
import time
import warnings

DEFAULT_MODELS = ('vit_small_patch14_dinov2.lvd142m', 'vit_small_patch16_dinov3.lvd1689m',
                  'vit_small_plus_patch16_dinov3.lvd1689m', 'vit_base_patch16_dinov3.lvd1689m',
                  'vit_base_patch16_siglip_512.v2_webli', 'naflexvit_base_patch16_radio_v3.c_radio',
                  'convnext_tiny.dinov3_lvd1689m')


def _rss_kb(field: str) -> int:
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(field + ':'):
                return int(line.split()[1])
    return 0


def _measure(name: str, size: int, threads: int, repeats: int, queue) -> None:
    import torch
    torch.set_num_threads(threads)
    from mmjafar.models.backbones import TimmBackbone
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        net = TimmBackbone(name, pretrained=False, random_init=True)
    image = torch.randn(1, 3, size, size)
    with torch.no_grad():
        with open('/proc/self/clear_refs', 'w') as f:  # reset the high-water mark
            f.write('5')
        before = _rss_kb('VmRSS')
        shape = tuple(net(image)[0].shape)  # warm-up; freed memory stays mapped, so its peak is the one to read
        peak_mb = (_rss_kb('VmHWM') - before) / 1024
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            net(image)
            times.append(time.perf_counter() - start)
    params = sum(p.numel() for p in net.parameters())
    queue.put(dict(model=name, family=type(net.model).__name__, params=params, shape=shape,
                   time=statistics.median(times), peak_mb=peak_mb))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('models', nargs='*', default=list(DEFAULT_MODELS))
    parser.add_argument('--size', type=int, default=448)
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--repeats', type=int, default=3)
    args = parser.parse_args()
    ctx = mp.get_context('spawn')
    print(f'| model | timm class | params | output at {args.size}² | time (s) | peak MB |')
    print('|---|---|---:|---|---:|---:|')
    for name in args.models:
        queue = ctx.Queue()
        proc = ctx.Process(target=_measure, args=(name, args.size, args.threads, args.repeats, queue))
        proc.start()
        proc.join()
        if proc.exitcode != 0:
            print(f'| {name} | failed (exit code {proc.exitcode}) | | | | |')
            continue
        r = queue.get()
        print(f'| `{r["model"]}` | {r["family"]} | {r["params"] / 1e6:.1f} M | {r["shape"][1]}×{r["shape"][2]}×'
              f'{r["shape"][3]} | {r["time"]:.2f} | {r["peak_mb"]:,.0f} |', flush=True)


if __name__ == '__main__':
    main()
