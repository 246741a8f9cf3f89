"""Layer normalisation over the channels of NCHW maps, in the two parameter layouts official checkpoints use."""
import torch
from torch import nn


class ChannelNorm(nn.Module):
    """``nn.LayerNorm`` over ``C`` of a ``(B, C, H, W)`` map, held as the child ``norm``.

    The parameter names (``norm.weight``, ``norm.bias``) are those of the channel norm in FeatUp's and LoftUp's
    checkpoints (``model.1.norm.*``, ``channelnorm.norm.*``). Computed channels-last, as upstream does.

    Args:
        channels: ``C``.
        eps: LayerNorm epsilon (1e-5, the ``nn.LayerNorm`` default upstream uses).
    """

    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(channels, eps=eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W) -> (B, C, H, W)``."""
        return self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class ChannelsFirstLayerNorm(nn.Module):
    """LayerNorm over ``C`` of ``(B, C, H, W)`` computed in place along dim 1 (ConvNeXt style).

    Parameters ``weight`` and ``bias`` sit directly on the module (LoftUp's ``final_conv.1``). The formula is
    evaluated as written upstream: ``w * (x - mean) / sqrt(var + eps) + b`` with the biased variance.

    Args:
        channels: ``C``.
        eps: epsilon added to the variance (1e-6 in LoftUp).
    """

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W) -> (B, C, H, W)``."""
        centred = x - x.mean(1, keepdim=True)
        var = centred.pow(2).mean(1, keepdim=True)
        return self.weight[:, None, None] * (centred / torch.sqrt(var + self.eps)) + self.bias[:, None, None]

    def extra_repr(self) -> str:
        return f'{self.weight.shape[0]}, eps={self.eps}'
