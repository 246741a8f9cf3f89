"""Numbered x2 stages (``up1``, ``up2``, ...), the layout of FeatUp's stacked upsamplers and their checkpoints."""
import math
from typing import Callable, List, Optional, Sequence

import torch
import torch.nn.functional as F
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


def run_stages(module: nn.Module, features: torch.Tensor, guidance: Optional[torch.Tensor] = None,
               output_size: Optional[Sequence[int]] = None, num_stages: Optional[int] = None) -> List[torch.Tensor]:
    """Apply ``up1, up2, ...`` of ``module`` in turn; returns every stage's output (the last one is the result).

    Unguided stages are called as ``stage(features)``; guided ones as ``stage(features, pooled)`` where
    ``pooled`` is ``guidance`` brought to twice the current grid by ``adaptive_avg_pool2d`` (FeatUp's rule,
    which also enlarges a guidance image smaller than that grid). With ``output_size``, the stages stop once the
    grid covers it on both axes: further x2 stages would only be shrunk again by the final resize (a x4 neck
    level runs two stages of a four-stage module). With ``num_stages``, exactly the first ``num_stages`` run
    (``output_size`` is then not used).
    """
    outs = []
    stages = get_stages(module)
    if num_stages is not None:
        stages, output_size = stages[:num_stages], None
    for stage in stages:
        h, w = features.shape[-2:]
        if outs and output_size is not None and h >= output_size[0] and w >= output_size[1]:
            break
        if guidance is None:
            features = stage(features)
        else:
            features = stage(features, F.adaptive_avg_pool2d(guidance, (2 * h, 2 * w)))
        outs.append(features)
    return outs


def stages_for(ratio: float) -> int:
    """Number of x2 stages that cover an up-scale of ``ratio`` (at least one)."""
    return max(1, math.ceil(math.log2(ratio) - 1e-9)) if ratio > 1 else 1
