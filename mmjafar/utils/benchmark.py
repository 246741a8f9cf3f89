"""Runtime and peak-memory measurement of upsamplers (used by ``tools/benchmark_upsamplers.py``).

Each case runs in a fresh subprocess (or, with ``in_process``, in the caller's) so that CPU peak memory can be read
from the kernel's high-water mark of resident memory (``VmHWM``, reset before the call) without earlier cases'
allocations hiding it; on CUDA the allocator's peak counter (``torch.cuda.max_memory_allocated``) is used and times
come from CUDA events. Peak memory is reported as the increase over the memory held before the measured call
(model, inputs). ``dtype='bf16'`` runs the call under ``torch.autocast(device, torch.bfloat16)`` (mixed precision,
as ``AmpOptimWrapper(dtype='bfloat16')`` trains).
"""
import time
from dataclasses import asdict, dataclass, field
from typing import Dict, Optional, Sequence, Tuple

import torch

from mmjafar.models.upsamplers.builder import build_upsampler
from .profiling import call_in_fresh_process, one_line_error, proc_status_kb, reset_peak_rss

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
        reset_peak_rss()
        base = proc_status_kb('VmRSS') * 1024
    out, first = timed_step()  # also the warm-up (CUDA context, kernel selection)
    peak = (torch.cuda.max_memory_allocated() if cuda else proc_status_kb('VmHWM') * 1024) - base
    shape, out_dtype = tuple(out.shape), str(out.dtype).replace('torch.', '')
    del out
    times = [first]
    repeats = case.repeats if first < 5 else 1
    for _ in range(repeats):
        times.append(timed_step()[1])
    timed = sorted(times[1:]) if len(times) > 1 else times
    return dict(case=asdict(case), ok=True, time_ms=1000 * timed[len(timed) // 2], peak_mb=peak / 2**20,
                shape=shape, out_dtype=out_dtype, times_ms=[1000 * t for t in times])


def run_case(case: Case, timeout: float = 1800, in_process: bool = False) -> Dict:
    """Measure one case in a fresh process (or in this one); returns a dict with time_ms and peak_mb, or an error.

    In this process the CPU peak is still the reset high-water mark, but memory the allocator kept from earlier
    work can hide part of it: use it for quick checks, fresh processes for published numbers. A failing case is
    reported in its row, not raised: one failing method must not hide the others.
    """
    if not in_process:
        result, error = call_in_fresh_process(_measure, (case, ), timeout)
    else:
        try:
            result, error = _measure(case), None
        except Exception as exc:
            result, error = None, one_line_error(exc)
    return result if error is None else dict(case=asdict(case), ok=False, error=error)


def matmul_rate(device: str = 'cpu', threads: Optional[int] = None, repeats: int = 5) -> float:
    """Measured float32 matrix-product throughput of this machine in FLOP/s: the best of ``repeats`` products of
    the shape of JAFAR's largest one (8192 attention rows x 1024 keys by 1024 x 384 features)."""
    if threads:
        torch.set_num_threads(threads)
    a = torch.randn(8192, 1024, device=device)
    b = torch.randn(1024, 384, device=device)
    out = torch.empty(8192, 384, device=device)
    best = float('inf')
    for _ in range(repeats + 1):  # the first product warms up
        if device.startswith('cuda'):
            torch.cuda.synchronize()
        start = time.perf_counter()
        torch.mm(a, b, out=out)
        if device.startswith('cuda'):
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return 2 * a.shape[0] * a.shape[1] * b.shape[1] / best


def softmax_rate(device: str = 'cpu', threads: Optional[int] = None, repeats: int = 5) -> float:
    """Measured in-place float32 softmax throughput in elements/s: the best of ``repeats`` softmaxes of one
    attention chunk's logits (4 heads x 1024 queries x 1024 keys, rows of 1024)."""
    if threads:
        torch.set_num_threads(threads)
    x = torch.randn(4 * 1024, 1024, device=device)
    best = float('inf')
    for _ in range(repeats + 1):
        if device.startswith('cuda'):
            torch.cuda.synchronize()
        start = time.perf_counter()
        torch.ops.aten._softmax.out(x, -1, False, out=x)
        if device.startswith('cuda'):
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return x.numel() / best


def forward_work(case: Case) -> Tuple[Dict[str, float], int]:
    """The unavoidable work of one float32 forward of ``case`` (its method, sizes and kwargs), counted on a real
    call without autograd: FLOPs of matrix products and convolutions per operator (``torch.utils.flop_counter``),
    and the number of softmax elements (each an exponential)."""
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils.flop_counter import FlopCounterMode

    class SoftmaxCounter(TorchDispatchMode):
        elements = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if func.name().split('::')[-1].split('.')[0] in ('_softmax', '_safe_softmax'):
                SoftmaxCounter.elements += args[0].numel()
            return func(*args, **(kwargs or {}))

    if case.threads:
        torch.set_num_threads(case.threads)
    torch.manual_seed(0)
    model = build_upsampler(case.method, case.channels, **case.kwargs).to(case.device).eval()
    image = torch.randn(1, 3, case.image_size, case.image_size, device=case.device)
    feats = torch.randn(1, case.channels, case.feat_size, case.feat_size, device=case.device)
    with torch.no_grad(), FlopCounterMode(display=False) as counter, SoftmaxCounter():
        model(image, feats, (case.output_size, case.output_size))
    flops = {str(op).replace('aten.', ''): float(n) for op, n in counter.get_flop_counts().get('Global', {}).items()}
    return flops, SoftmaxCounter.elements


def compute_floor(case: Case, naive_ms: Optional[float] = None, lean_ms: Optional[float] = None) -> Dict:
    """The least time ``case``'s forward can take on this machine: its matrix-product and convolution work at the
    measured matrix-product rate (:func:`matmul_rate`) plus its softmax elements at the measured softmax rate
    (:func:`softmax_rate`) (:func:`forward_work`), with the largest speed-up over ``naive_ms`` that this bound
    allows and how far ``lean_ms`` is from it. Everything else the forward does (normalisation, activations,
    copies) only adds to the bound."""
    flops, exps = forward_work(case)
    rate, exp_rate = matmul_rate(case.device, case.threads), softmax_rate(case.device, case.threads)
    floor_ms = 1000 * (sum(flops.values()) / rate + exps / exp_rate)
    return dict(gflop=sum(flops.values()) / 1e9, per_op_gflop={k: v / 1e9 for k, v in flops.items()},
                rate_gflops=rate / 1e9, softmax_g=exps / 1e9, softmax_rate_g=exp_rate / 1e9, floor_ms=floor_ms,
                max_speedup=None if naive_ms is None else naive_ms / floor_ms,
                lean_over_floor=None if lean_ms is None else lean_ms / floor_ms)


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
