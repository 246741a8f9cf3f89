"""Process-level measurement helpers shared by the benchmarks: resident memory from ``/proc`` and running one
measurement in a fresh process (so that its peak memory is its own).

Example:
    >>> from mmjafar.utils.profiling import proc_status_kb
    >>> proc_status_kb('VmRSS') > 0
    True
"""
import multiprocessing as mp
from typing import Any, Callable, Optional, Tuple


def proc_status_kb(field: str) -> int:
    """A memory field of ``/proc/self/status`` in KiB: ``'VmRSS'`` (resident now), ``'VmHWM'`` (peak resident)."""
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(field + ':'):
                return int(line.split()[1])
    raise RuntimeError(f'{field} not in /proc/self/status')


def reset_peak_rss() -> bool:
    """Reset the kernel's resident-memory high-water mark (``VmHWM``) to the current size; False where not allowed."""
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
        return True
    except OSError:
        return False


def one_line_error(exc: BaseException, limit: int = 160) -> str:
    """``'TypeError: first line of the message'``, cut to ``limit`` characters (a table cell)."""
    return f'{type(exc).__name__}: {exc}'.splitlines()[0][:limit]


def _child(fn: Callable, args: Tuple, queue) -> None:
    try:
        queue.put((fn(*args), None))
    except Exception as exc:  # reported by the caller: one failing measurement must not hide the others
        queue.put((None, one_line_error(exc)))


def call_in_fresh_process(fn: Callable, args: Tuple = (), timeout: float = 3600) -> Tuple[Any, Optional[str]]:
    """``fn(*args)`` in a new (spawned) process: ``(result, None)``, or ``(None, error)`` when it raised, ran
    past ``timeout`` seconds or died (e.g. killed for memory). ``fn`` and ``args`` must be picklable."""
    ctx = mp.get_context('spawn')
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(fn, args, queue))
    proc.start()
    proc.join(timeout)
    if proc.is_alive():
        proc.kill()
        return None, f'timeout after {timeout:.0f} s'
    if queue.empty():
        return None, f'process died (exit code {proc.exitcode}; out of memory?)'
    return queue.get()
