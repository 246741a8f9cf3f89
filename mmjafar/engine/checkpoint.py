"""Loading mmengine 0.10 Runner checkpoints under torch >= 2.6 (whose ``torch.load`` defaults to weights_only)."""
import io
from typing import Dict

import torch

from mmjafar.models.checkpoint_loading import runner_checkpoint_globals, runner_checkpoint_loading
from .fileio import atomic_write_bytes

__all__ = ['runner_checkpoint_globals', 'runner_checkpoint_loading', 'export_upsampler_from_checkpoint']


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
