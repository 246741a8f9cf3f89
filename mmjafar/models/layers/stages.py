"""Numbered x2 stages (``up1``, ``up2``, ...), the layout of FeatUp's stacked upsamplers and their checkpoints."""
from typing import Callable, List

from torch import nn


def add_stages(module: nn.Module, num_stages: int, factory: Callable[[], nn.Module]) -> None:
    """Register ``num_stages`` children ``up1 ... upN`` built by ``factory`` on ``module``."""
    if num_stages < 1:
        raise ValueError(f'{type(module).__name__}: num_stages must be at least 1, got {num_stages}')
    for i in range(num_stages):
        module.add_module(f'up{i + 1}', factory())


def get_stages(module: nn.Module) -> List[nn.Module]:
    """The children ``up1, up2, ...`` of ``module`` in order."""
    stages = []
    while hasattr(module, f'up{len(stages) + 1}'):
        stages.append(getattr(module, f'up{len(stages) + 1}'))
    return stages
