"""The one vocabulary for how an attention-like operator is computed: the ``impl`` argument.

Modules with a choice: :class:`~.attention.HeadAveragedCrossAttention` and the windowed attention (JAFAR, AnyUp),
:func:`~.neighborhood_attention.neighborhood_attention_2d` (NAF, AnyUp's NATTEN variant), CARAFE's reassembly and
the deformable attention of ``projects/bev`` (BEVFormer). Each takes ``impl``, one of:

* ``'auto'`` (default): a compiled kernel where the module has one and it can run on the tensors (device, dtype,
  build; :mod:`.device_kernels`), else ``'torch'``;
* ``'torch'``: pure PyTorch, exact and memory-lean (chunked or tiled, fused CPU passes, SDPA on CUDA), any device,
  autograd included;
* ``'reference'``: pure PyTorch in the official order of operations, materialising the attention weights (parity
  tests, attention maps; memory grows with queries x keys). A module whose PyTorch path already is the official
  one treats it as ``'torch'``;
* a kernel name, for the modules that have that kernel: ``'mmcv'`` (CARAFE, deformable attention) or ``'natten'``
  (neighbourhood attention): that kernel, and a one-line error saying why where it cannot run.

``impl=None`` (every module's default) follows the process-wide default, read at each call: :func:`set_attn_impl`,
initially the environment variable ``MMJAFAR_ATTN_IMPL`` or ``'auto'``; it takes the three generic names. A
module's ``impl`` argument (stored as its ``impl`` attribute, which may be changed later) overrides it for that
instance. The older names ``'lean'`` (= ``'torch'``) and ``'naive'`` (= ``'reference'``) are still accepted.

Example:
    >>> resolve_attn_impl(None), resolve_attn_impl('naive'), resolve_attn_impl('mmcv', kernels=('mmcv', ))
    ('auto', 'reference', 'mmcv')
"""
import os
from typing import Optional, Sequence

import torch

from .device_kernels import use_kernel

#: the names every module takes (and the only ones the process-wide default takes)
ATTN_IMPLS = ('auto', 'torch', 'reference')
#: older names, mapped to the current ones
_ALIASES = {'lean': 'torch', 'naive': 'reference'}
_default = os.environ.get('MMJAFAR_ATTN_IMPL', 'auto')


def _canonical(impl: str, allowed: Sequence[str], owner: str) -> str:
    name = _ALIASES.get(impl, impl)
    if name not in allowed:
        raise ValueError(f'{owner}: impl must be one of {tuple(allowed)}, got {impl!r}')
    return name


def get_attn_impl() -> str:
    """The process-wide default used by modules built with ``impl=None``."""
    return _canonical(_default, ATTN_IMPLS, 'MMJAFAR_ATTN_IMPL / set_attn_impl')


def set_attn_impl(impl: str) -> None:
    """Set the process-wide default (``'auto'``, ``'torch'`` or ``'reference'``); instances with their own
    ``impl`` keep it."""
    global _default
    _default = _canonical(impl, ATTN_IMPLS, 'set_attn_impl')


def check_attn_impl(impl: Optional[str], kernels: Sequence[str] = (), owner: str = 'attention') -> Optional[str]:
    """Validate a module's ``impl`` argument at construction: None stays None (the default, read at each call),
    a name is returned under its current spelling. ``kernels``: the kernel names this module accepts."""
    return None if impl is None else _canonical(impl, ATTN_IMPLS + tuple(kernels), owner)


def resolve_attn_impl(impl: Optional[str], kernels: Sequence[str] = (), owner: str = 'attention') -> str:
    """The implementation a call runs: ``impl``, or the process-wide default when None."""
    return _canonical(get_attn_impl() if impl is None else impl, ATTN_IMPLS + tuple(kernels), owner)


def use_kernel_impl(impl: Optional[str], kernel: str, tensor: torch.Tensor, owner: str,
                    dtype: Optional[torch.dtype] = None) -> bool:
    """Whether a call with ``impl`` runs the compiled ``kernel`` (a :data:`~.device_kernels.KERNELS` key such as
    ``'mmcv.carafe'``, whose ``impl`` name is the part before the dot) on ``tensor``.

    Never for ``'torch'``/``'reference'``; for ``'auto'`` where the kernel can run; for the kernel's own name
    always, with a one-line ``RuntimeError`` naming ``owner``, the reason and the alternatives where it cannot.
    """
    name = kernel.split('.')[0]
    impl = resolve_attn_impl(impl, (name, ), owner)
    if impl in ('torch', 'reference'):
        return False
    return use_kernel(kernel, tensor, impl == name, f'{owner}(impl={impl!r})', dtype)
