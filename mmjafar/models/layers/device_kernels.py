"""When an optional compiled kernel may run: mmcv's CARAFE and deformable-attention ops, NATTEN.

Each of them exists only for some devices and dtypes, and only in some builds (the project's set-up compiles mmcv
without CUDA, so its CUDA ops are absent even on a GPU machine). Modules ask through
:func:`~.attention_impl.use_kernel_impl` (the ``impl`` vocabulary), which calls :func:`use_kernel`:
``impl='auto'`` takes the kernel only when it supports the tensor's device and dtype and runs the exact PyTorch
path otherwise; an explicit ``impl=`` that names the kernel fails with the reason.

Example:
    >>> import torch
    >>> kernel_unsupported('mmcv.carafe', torch.zeros(1, device='cpu'))
    "mmcv.carafe runs on ('cuda',) tensors, not cpu"
"""
import functools
import importlib
from dataclasses import dataclass
from typing import Callable, Dict, Optional, Tuple

import torch


@functools.lru_cache(maxsize=None)
def mmcv_cuda_ops_missing() -> Optional[str]:
    """Why mmcv's compiled CUDA ops are unavailable, or None when they are (mmcv built with CUDA)."""
    try:
        ops = importlib.import_module('mmcv.ops')
    except (ImportError, OSError) as err:
        return f'mmcv with compiled ops is not importable ({type(err).__name__}: {err})'
    try:
        version = ops.get_compiling_cuda_version()
    except (AttributeError, RuntimeError) as err:
        return f'mmcv.ops cannot report its CUDA build ({err})'
    if version == 'not available':
        return ('mmcv was compiled without CUDA (the CPU build of tools/setup_env.sh); rebuild it with FORCE_CUDA=1 '
                'to use its CUDA kernels')
    return None


@functools.lru_cache(maxsize=None)
def natten_missing() -> Optional[str]:
    """Why NATTEN cannot be used, or None when it imports."""
    try:
        importlib.import_module('natten')
    except (ImportError, OSError) as err:
        return f'the optional natten package is not importable ({type(err).__name__}: {err})'
    return None


@dataclass
class KernelSpec:
    """Devices and dtypes a compiled kernel supports, and a check that it is installed (None = installed)."""
    devices: Tuple[str, ...]
    dtypes: Tuple[torch.dtype, ...]
    missing: Callable[[], Optional[str]]


#: the optional kernels mmjafar (and projects/bev) can call
KERNELS: Dict[str, KernelSpec] = {
    # mmcv/ops/csrc: CARAFE dispatches floating types and half, CUDA only
    'mmcv.carafe': KernelSpec(('cuda', ), (torch.float32, torch.float16, torch.float64), mmcv_cuda_ops_missing),
    # MultiScaleDeformableAttnFunction: float types, CUDA only (callers cast other dtypes to float32 first)
    'mmcv.ms_deform_attn': KernelSpec(('cuda', ), (torch.float32, torch.float64), mmcv_cuda_ops_missing),
    # NATTEN's neighbourhood-attention kernels
    'natten': KernelSpec(('cuda', ), (torch.float32, torch.float16, torch.bfloat16), natten_missing),
}


def kernel_unsupported(kernel: str, tensor: torch.Tensor, dtype: Optional[torch.dtype] = None) -> Optional[str]:
    """Why ``kernel`` cannot run on ``tensor`` (its device, and ``dtype`` or its own dtype), or None if it can."""
    spec = KERNELS[kernel]
    if tensor.device.type not in spec.devices:
        return f'{kernel} runs on {spec.devices} tensors, not {tensor.device.type}'
    dtype = dtype or tensor.dtype
    if dtype not in spec.dtypes:
        return f'{kernel} supports {[str(d).replace("torch.", "") for d in spec.dtypes]}, not {dtype}'
    return spec.missing()


def use_kernel(kernel: str, tensor: torch.Tensor, required: bool, owner: str, dtype: Optional[torch.dtype] = None,
               fix: str = "impl='torch' (exact, any device) or impl='auto' (the kernel only where it can run)") -> bool:
    """True when ``kernel`` should run on ``tensor``; False for the PyTorch path.

    ``required`` (the caller's ``impl=`` names the kernel explicitly) turns an unsupported case into a one-line
    ``RuntimeError`` naming ``owner``, the reason and ``fix``, instead of a silent fallback.
    """
    reason = kernel_unsupported(kernel, tensor, dtype)
    if reason is None:
        return True
    if required:
        raise RuntimeError(f'{owner}: {reason}; use {fix}')
    return False
