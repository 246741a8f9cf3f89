"""Runtime and peak-memory measurement of upsamplers (used by ``tools/benchmark_upsamplers.py``).

Each case runs in a fresh subprocess (or, with ``in_process``, in the caller's) so that CPU peak memory can be read
from the kernel's high-water mark of resident memory (``VmHWM``, reset before the call) without earlier cases'
allocations hiding it; on CUDA the allocator's peak counter (``torch.cuda.max_memory_allocated``) is used and times
come from CUDA events. Peak memory is reported as the increase over the memory held before the measured call
(model, inputs). ``dtype='bf16'`` runs the call under ``torch.autocast(device, torch.bfloat16)`` (mixed precision,
as ``AmpOptimWrapper(dtype='bfloat16')`` trains).
"""
import inspect
import multiprocessing as mp
import time
from dataclasses import asdict, dataclass, field
from typing import Dict, List, Optional, Sequence

import torch

#: ``Case.dtype`` values: float32, or bfloat16 autocast.
DTYPES = ('fp32', 'bf16')


@dataclass
class Case:
    method: str                      # registry name, e.g. 'JAFAR'
    kwargs: Dict = field(default_factory=dict)
    label: Optional[str] = None      # row label (defaults to the method name)
    image_size: int = 448
    feat_size: int = 32
    channels: int = 384
    output_size: int = 448
    backward: bool = False
    device: str = 'cpu'
    repeats: int = 3
    threads: Optional[int] = None
    dtype: str = 'fp32'              # 'fp32' or 'bf16' (autocast)


def build_upsampler(method: str, channels: int, **kwargs) -> torch.nn.Module:
    """Build a registered upsampler for ``channels``-channel features with otherwise default arguments."""
    import mmjafar  # noqa: F401  (registers everything)
    from mmjafar.registry import MODELS
    cls = MODELS.get(method)
    if cls is None:
        raise KeyError(f'{method} is not a registered upsampler')
    arg = getattr(cls, 'channels_arg', None)
    if arg is not None and arg not in kwargs:
        kwargs[arg] = channels
    return cls(**kwargs)


def registered_upsamplers() -> List[str]:
    """Names of every upsampler in mmjafar's registry."""
    import mmjafar  # noqa: F401
    from mmjafar.models.upsamplers import BaseUpsampler
    from mmjafar.registry import MODELS
    return sorted(name for name, cls in MODELS.module_dict.items()
                  if inspect.isclass(cls) and issubclass(cls, BaseUpsampler))


def _rss_kb(field_name: str) -> int:
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(field_name + ':'):
                return int(line.split()[1])
    raise RuntimeError(f'{field_name} not in /proc/self/status')


def _reset_peak_rss() -> bool:
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
        return True
    except OSError:
        return False


def _measure(case: Case) -> Dict:
    if case.threads:
        torch.set_num_threads(case.threads)
    device = torch.device(case.device)
    torch.manual_seed(0)
    model = build_upsampler(case.method, case.channels, **case.kwargs).to(device)
    model.train(case.backward)
    image = torch.randn(1, 3, case.image_size, case.image_size, device=device)
    feats = torch.randn(1, case.channels, case.feat_size, case.feat_size, device=device,
                        requires_grad=case.backward)
    size = (case.output_size, case.output_size)

    if case.dtype not in DTYPES:
        raise ValueError(f'dtype must be one of {DTYPES}, got {case.dtype!r}')
    cuda = device.type == 'cuda'

    def step():
        with torch.set_grad_enabled(case.backward), torch.autocast(device.type, dtype=torch.bfloat16,
                                                                   enabled=case.dtype == 'bf16'):
            out = model(image, feats, size)
            if case.backward:
                out.float().sum().backward()
        return out

    def timed_step():
        model.zero_grad(set_to_none=True)
        feats.grad = None
        if cuda:  # CUDA events: device time of the call, no host-side jitter
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            out = step()
            end.record()
            torch.cuda.synchronize()
            return out, start.elapsed_time(end) / 1000
        start = time.perf_counter()
        out = step()
        return out, time.perf_counter() - start

    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        _reset_peak_rss()
        base = _rss_kb('VmRSS') * 1024
    out, first = timed_step()  # also the warm-up (CUDA context, kernel selection)
    peak = (torch.cuda.max_memory_allocated() if cuda else _rss_kb('VmHWM') * 1024) - base
    shape, out_dtype = tuple(out.shape), str(out.dtype).replace('torch.', '')
    del out
    times = [first]
    repeats = case.repeats if first < 5 else 1
    for _ in range(repeats):
        times.append(timed_step()[1])
    timed = sorted(times[1:]) if len(times) > 1 else times
    return dict(case=asdict(case), ok=True, time_ms=1000 * timed[len(timed) // 2], peak_mb=peak / 2**20,
                shape=shape, out_dtype=out_dtype, times_ms=[1000 * t for t in times])


def _worker(case: Case, queue) -> None:
    try:
        queue.put(_measure(case))
    except Exception as exc:  # reported in the table, not raised: one failing method must not hide the others
        queue.put(dict(case=asdict(case), ok=False, error=f'{type(exc).__name__}: {exc}'.splitlines()[0][:120]))


def run_case(case: Case, timeout: float = 1800, in_process: bool = False) -> Dict:
    """Measure one case in a fresh process (or in this one); returns a dict with time_ms and peak_mb, or an error.

    In this process the CPU peak is still the reset high-water mark, but memory the allocator kept from earlier
    work can hide part of it: use it for quick checks, fresh processes for published numbers.
    """
    if in_process:
        queue = _ListQueue()
        _worker(case, queue)
        return queue.items[0]
    ctx = mp.get_context('spawn')
    queue = ctx.Queue()
    proc = ctx.Process(target=_worker, args=(case, queue))
    proc.start()
    proc.join(timeout)
    if proc.is_alive():
        proc.kill()
        return dict(case=asdict(case), ok=False, error=f'timeout after {timeout:.0f} s')
    if queue.empty():
        return dict(case=asdict(case), ok=False, error=f'process died (exit code {proc.exitcode}; out of memory?)')
    return queue.get()


class _ListQueue:
    def __init__(self) -> None:
        self.items: List[Dict] = []

    def put(self, item: Dict) -> None:
        self.items.append(item)


def format_table(results: Sequence[Dict]) -> str:
    """Markdown table: one row per (method, output, pass, dtype)."""
    lines = ['| method | features -> output | pass | dtype | time (ms) | peak mem (MB) |',
             '|---|---|---|---|---:|---:|']
    for r in results:
        c = r['case']
        label = c['label'] or c['method']
        geom = f"{c['feat_size']}² -> {c['output_size']}²"
        mode = 'fwd+bwd' if c['backward'] else 'fwd'
        dtype = c.get('dtype', 'fp32')
        if r['ok']:
            ms = r['time_ms']
            lines.append(f"| {label} | {geom} | {mode} | {dtype} | {ms:.1f} | {r['peak_mb']:.0f} |" if ms < 100 else
                         f"| {label} | {geom} | {mode} | {dtype} | {ms:.0f} | {r['peak_mb']:.0f} |")
        else:
            lines.append(f"| {label} | {geom} | {mode} | {dtype} | {r['error']} | |")
    return '\n'.join(lines)
