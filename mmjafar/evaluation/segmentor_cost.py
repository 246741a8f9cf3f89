"""Parameters, forward multiply-adds, CPU time and peak memory of an mmseg segmentor config (random weights)."""
import statistics
import time
from typing import Dict, List, Optional, Sequence

import torch

from mmjafar.utils.profiling import call_in_fresh_process, proc_status_kb


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
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS

    from mmjafar.engine.runner import load_config
    cfg = load_config(config, cfg_options)
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
    base = proc_status_kb('VmRSS')
    with torch.no_grad():
        model(inputs, mode='tensor')  # warm-up (allocator, lazy init); counts towards the peak
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            model(inputs, mode='tensor')
            times.append(time.perf_counter() - start)
    peak = proc_status_kb('VmHWM') - base
    return dict(config=config, params=params, gmacs=forward_macs(model, inputs) / 1e9,
                time_s=statistics.median(times), peak_mb=peak / 1024)


def measure_in_subprocess(config: str, size: int = 512, threads: int = 2, repeats: int = 2,
                          cfg_options: Optional[Dict] = None, timeout: float = 3600) -> Dict:
    """:func:`measure` in a fresh process, so that each config's peak memory is its own; a failure is reported
    as ``{'config', 'error'}`` (one failing config must not hide the others)."""
    result, error = call_in_fresh_process(measure, (config, size, threads, repeats, cfg_options), timeout)
    return result if error is None else dict(config=config, error=error)


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
