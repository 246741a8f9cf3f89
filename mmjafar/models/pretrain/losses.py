"""Feature-regression losses of upsampler pretraining (torch only)."""
from typing import Dict

import torch
import torch.nn.functional as F
from torch import nn

from mmjafar.registry import MODELS

_NORMALIZATIONS = ('none', 'minmax')


@MODELS.register_module()
class CosineMSELoss(nn.Module):
    """``cos_weight * (1 - cos) + mse_weight * MSE`` between predicted and target feature maps.

    * ``normalize='none'``: the JAFAR paper's objective (eq. 3), ``1 - cos(F_pred, F_hr) + L2``, with L2 the mean
      squared error over channels and pixels.
    * ``normalize='minmax'``: the official release's ``Cosine_MSE`` loss: the same cosine term, and the MSE computed
      after scaling prediction and target by the target's per-pixel channel min and max,
      ``(x - min_c F_hr) / (max_c F_hr - min_c F_hr + eps)``, which makes it independent of the feature scale.

    The cosine is taken along channels at every pixel and averaged over pixels and batch (as
    ``nn.CosineEmbeddingLoss`` with target 1 does). Computed in float32 whatever the input dtype.

    Args:
        cos_weight: weight of the ``1 - cos`` term.
        mse_weight: weight of the MSE term.
        normalize: 'none' (paper) or 'minmax' (official release).
        eps: added to the min-max range.
    """

    def __init__(self, cos_weight: float = 1.0, mse_weight: float = 1.0, normalize: str = 'none',
                 eps: float = 1e-6) -> None:
        super().__init__()
        if normalize not in _NORMALIZATIONS:
            raise ValueError(f'CosineMSELoss: normalize must be one of {_NORMALIZATIONS}, got {normalize!r}')
        self.cos_weight, self.mse_weight, self.normalize, self.eps = cos_weight, mse_weight, normalize, eps

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> Dict[str, torch.Tensor]:
        """``(B, C, H, W), (B, C, H, W) -> {'cos': scalar, 'mse': scalar}`` (already weighted)."""
        if pred.shape != target.shape:
            raise ValueError(f'CosineMSELoss: prediction {tuple(pred.shape)} and target {tuple(target.shape)} differ '
                             'in shape; the upsampler must predict the target grid')
        pred, target = pred.float(), target.float()
        cos = F.cosine_similarity(pred, target, dim=1, eps=1e-8)
        if self.normalize == 'minmax':
            lo = target.amin(dim=1, keepdim=True)
            scale = target.amax(dim=1, keepdim=True) - lo + self.eps
            pred, target = (pred - lo) / scale, (target - lo) / scale
        return dict(cos=self.cos_weight * (1 - cos).mean(), mse=self.mse_weight * F.mse_loss(pred, target))
