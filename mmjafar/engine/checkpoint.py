"""Loading mmengine 0.10 Runner checkpoints under torch >= 2.6 (whose ``torch.load`` defaults to weights_only)."""
import builtins
import contextlib
from typing import Iterator, List

import numpy as np
import torch
from mmengine.logging import HistoryBuffer


def runner_checkpoint_globals() -> List[object]:
    """The non-tensor types a Runner checkpoint holds besides tensors: the message hub's ``HistoryBuffer`` (and
    the ``getattr`` it pickles its statistics with) and numpy arrays, scalars and dtypes."""
    dtypes = [getattr(np.dtypes, name) for name in dir(np.dtypes) if name.endswith('DType')]
    return [HistoryBuffer, builtins.getattr, np.dtype, np.ndarray, np.core.multiarray._reconstruct,
            np.core.multiarray.scalar] + dtypes


@contextlib.contextmanager
def runner_checkpoint_loading() -> Iterator[None]:
    """Allow exactly those types in ``torch.load`` for the duration of the block.

    mmengine 0.10.7 loads ``--resume`` checkpoints with a bare ``torch.load``; since torch 2.6 that refuses the
    message hub and resuming fails with an ``UnpicklingError``. Wrap ``runner.train()`` in this context (as
    ``tools/pretrain_jafar.py`` does) instead of turning weights-only loading off.
    """
    with torch.serialization.safe_globals(runner_checkpoint_globals()):
        yield
