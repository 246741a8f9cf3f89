"""One-line checks that a checkpoint was made for the module's feature dimension."""
from typing import Dict

import torch


def check_dim(method: str, state_dict: Dict[str, torch.Tensor], key: str, axis: int, arg: str, built: int) -> None:
    """Raise a one-line ``ValueError`` when ``state_dict[key].shape[axis]`` differs from ``built``.

    Args:
        method: class name for the message.
        state_dict: checkpoint keys relative to the module.
        key: a tensor whose size along ``axis`` is the constructor argument ``arg``; absent keys pass.
        arg: the constructor argument (named in the message with the value to use).
        built: the value the module was built with.
    """
    tensor = state_dict.get(key)
    if tensor is not None and tensor.dim() > axis and tensor.shape[axis] != built:
        found = tensor.shape[axis]
        raise ValueError(f'{method}: checkpoint has {arg}={found} but this module was built with {arg}={built}; '
                         f'set {arg}={found} (and use the backbone it was trained for)')
