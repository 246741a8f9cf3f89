"""Parameters, forward multiply-adds, CPU time and peak memory of an mmseg segmentor config (random weights)."""
import multiprocessing as mp
import statistics
import time
from typing import Dict, List, Optional, Sequence

import torch


def _rss_kb(field: str) -> int:
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(field + ':'):
                return int(line.split()[1])
    raise RuntimeError(f'{field} not in /proc/self/status')


def _drop_checkpoints(cfg) -> None:
    """Random weights: no pretrained backbone or upsampler file is read (costs do not depend on the values)."""
    def strip(node):
        if isinstance(node, dict):
            init = node.get('init_cfg')
            if isinstance(init, dict) and init.get('type') == 'Pretrained':
                node['init_cfg'] = None
            for key in ('pretrained', ):
                if isinstance(node.get(key), str):
                    node[key] = None
            for value in node.values():
                strip(value)
        elif isinstance(node, (list, tuple)):
            for value in node:
                strip(value)
    strip(cfg.model)


def build_segmentor(config: str, cfg_options: Optional[Dict] = None) -> torch.nn.Module:
    """The config's model with random weights, in eval mode (mmseg's default scope, mmjafar registered)."""
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS

    import mmjafar  # noqa: F401  (registers the upsamplers, necks and segmentors)
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    _drop_checkpoints(cfg)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    return MODELS.build(cfg.model).eval()


def forward_macs(model: torch.nn.Module, inputs: torch.Tensor) -> float:
    """Multiply-adds of one ``mode='tensor'`` forward (matrix products, convolutions, attention), counted by
    ``torch.utils.flop_counter`` inside every custom op too; elementwise work (norms, softmax) is not counted,
    as in mmcv's and fvcore's conventions."""
    from torch.utils.flop_counter import FlopCounterMode
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(inputs, mode='tensor')
    return counter.get_total_flops() / 2


def measure(config: str, size: int = 512, threads: int = 2, repeats: int = 2,
            cfg_options: Optional[Dict] = None) -> Dict:
    """Cost of one batch-1 ``size x size`` forward of ``config`` (in this process; see :func:`measure_in_subprocess`).

    Returns ``params`` (all parameters), ``gmacs`` (forward multiply-adds / 1e9), ``time_s`` (median wall time
    of ``repeats`` forwards after one warm-up), ``peak_mb`` (rise of the resident-memory high-water mark during
    the forwards, over the memory held after building the model).
    """
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = build_segmentor(config, cfg_options)
    inputs = torch.randn(1, 3, size, size)
    params = sum(p.numel() for p in model.parameters())
    base = _rss_kb('VmRSS')
    with torch.no_grad():
        model(inputs, mode='tensor')  # warm-up (allocator, lazy init); counts towards the peak
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            model(inputs, mode='tensor')
            times.append(time.perf_counter() - start)
    peak = _rss_kb('VmHWM') - base
    return dict(config=config, params=params, gmacs=forward_macs(model, inputs) / 1e9,
                time_s=statistics.median(times), peak_mb=peak / 1024)


def _worker(args, queue) -> None:
    try:
        queue.put(measure(*args))
    except Exception as exc:  # reported in the table: one failing config must not hide the others
        queue.put(dict(config=args[0], error=f'{type(exc).__name__}: {exc}'.splitlines()[0][:160]))


def measure_in_subprocess(config: str, size: int = 512, threads: int = 2, repeats: int = 2,
                          cfg_options: Optional[Dict] = None, timeout: float = 3600) -> Dict:
    """:func:`measure` in a fresh process, so that each config's peak memory is its own."""
    ctx = mp.get_context('spawn')
    queue = ctx.Queue()
    proc = ctx.Process(target=_worker, args=((config, size, threads, repeats, cfg_options), queue))
    proc.start()
    proc.join(timeout)
    if proc.is_alive():
        proc.kill()
        return dict(config=config, error=f'timeout after {timeout:.0f} s')
    if queue.empty():
        return dict(config=config, error=f'process died (exit code {proc.exitcode}; out of memory?)')
    return queue.get()


def format_cost_table(results: Sequence[Dict], baseline: Dict) -> str:
    """Markdown table: each config's cost and its difference from / ratio to ``baseline``."""
    rows: List[str] = ['| config | params (M) | added params (M) | GMACs | added GMACs | forward (s) | time ratio '
                       '| peak (MB) | memory ratio |', '|---|---:|---:|---:|---:|---:|---:|---:|---:|']
    for r in results:
        name = r['config'].rsplit('/', 1)[-1].removesuffix('.py')
        if 'error' in r:
            rows.append(f'| {name} | error: {r["error"]} |' + ' |' * 7)
            continue
        rows.append(f'| {name} | {r["params"] / 1e6:.2f} | {(r["params"] - baseline["params"]) / 1e6:+.2f} '
                    f'| {r["gmacs"]:.1f} | {r["gmacs"] - baseline["gmacs"]:+.2f} | {r["time_s"]:.2f} '
                    f'| {r["time_s"] / baseline["time_s"]:.2f} | {r["peak_mb"]:.0f} '
                    f'| {r["peak_mb"] / baseline["peak_mb"]:.2f} |')
    return '\n'.join(rows)
