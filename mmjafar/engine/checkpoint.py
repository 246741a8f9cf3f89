"""Loading mmengine 0.10 Runner checkpoints under torch >= 2.6 (whose ``torch.load`` defaults to weights_only)."""
import builtins
import contextlib
import io
from typing import Dict, Iterator, List

import numpy as np
import torch
from mmengine.logging import HistoryBuffer
from mmengine.optim import scheduler as mmengine_schedulers
from mmengine.optim.scheduler.param_scheduler import _ParamScheduler

from .fileio import atomic_write_bytes


def runner_checkpoint_globals() -> List[object]:
    """The non-tensor types a Runner checkpoint holds besides tensors: the message hub's ``HistoryBuffer`` (and
    the ``getattr`` it pickles its statistics with), numpy arrays, scalars and dtypes, and mmengine's parameter
    scheduler classes (``OneCycleParamScheduler``'s state holds its annealing function as
    ``getattr(OneCycleParamScheduler, '_annealing_linear')``)."""
    dtypes = [getattr(np.dtypes, name) for name in dir(np.dtypes) if name.endswith('DType')]
    schedulers = [cls for cls in vars(mmengine_schedulers).values()
                  if isinstance(cls, type) and issubclass(cls, _ParamScheduler)]
    return [HistoryBuffer, builtins.getattr, np.dtype, np.ndarray, np.core.multiarray._reconstruct,
            np.core.multiarray.scalar] + dtypes + schedulers


@contextlib.contextmanager
def runner_checkpoint_loading() -> Iterator[None]:
    """Allow exactly those types in ``torch.load`` for the duration of the block.

    mmengine 0.10.7 loads ``--resume`` checkpoints with a bare ``torch.load``; since torch 2.6 that refuses the
    message hub and resuming fails with an ``UnpicklingError``. Wrap ``runner.train()`` in this context (as
    ``tools/pretrain_jafar.py`` does) instead of turning weights-only loading off.
    """
    with torch.serialization.safe_globals(runner_checkpoint_globals()):
        yield


def export_upsampler_from_checkpoint(checkpoint: str, out: str, prefix: str = 'upsampler.') -> Dict[str, torch.Tensor]:
    """Write the upsampler weights of an mmengine pretraining checkpoint (``iter_N.pth``) as a plain state dict.

    The same file the ``ExportUpsamplerHook`` writes at the end of training, for runs that stopped early.
    Returns the exported state dict.
    """
    with runner_checkpoint_loading():
        ckpt = torch.load(checkpoint, map_location='cpu')
    state = ckpt.get('state_dict', ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict):
        raise ValueError(f'{checkpoint!r} holds no state dict')
    weights = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    if not weights:
        raise ValueError(f'{checkpoint!r} has no keys starting with {prefix!r}; is it a pretraining checkpoint of '
                         'tools/pretrain_jafar.py?')
    buffer = io.BytesIO()
    torch.save(weights, buffer)
    atomic_write_bytes(buffer.getvalue(), out)
    return weights
