"""FeatUp's joint bilateral upsampler stack (Fu, Hamilton et al., ICLR 2024), exact and checkpoint-compatible."""
from typing import Dict, Optional, Tuple

import torch
import torch.nn.functional as F
from mmengine.logging import print_log
from torch import nn

from mmjafar.registry import MODELS
from ..layers.channel_norm import ChannelNorm
from ..layers.checkpoint_checks import check_dim
from ..layers.local_window import local_similarity, local_weighted_sum
from ..layers.resize import resize_features
from ..layers.stages import add_stages, run_stages
from .base import BaseUpsampler


def _pointwise_mlp(in_channels: int, hidden: int, out_channels: int) -> nn.Sequential:
    """``1x1 conv -> GELU -> Dropout2d(0.1) -> 1x1 conv`` (indices 0 and 3 hold the weights)."""
    return nn.Sequential(nn.Conv2d(in_channels, hidden, 1), nn.GELU(), nn.Dropout2d(0.1),
                         nn.Conv2d(hidden, out_channels, 1))


class JBUStage(nn.Module):
    """One x2 joint bilateral stage with a learned range kernel (FeatUp's ``JBULearnedRange``).

    For every pixel of the guidance grid, a ``k x k`` kernel (``k = 2 * radius + 1``) is the product of

    * a range kernel: softmax over the window of ``exp(range_temp) * <p(centre), p(neighbour)>`` with
      ``p = range_proj(guidance)`` (reflect padding), the temperature clamped to ``[1e-4, 1e4]``;
    * a spatial Gaussian ``exp(-(dy^2 + dx^2) / (2 sigma_spatial^2))`` with offsets on ``linspace(-1, 1, k)``;

    normalised to sum 1, then corrected by ``0.1 * fixup_proj([kernel, guidance])`` (not renormalised). The
    kernels filter the bicubically enlarged (``align_corners=False``), reflect-padded source.

    Args:
        guidance_dim: guidance channels (3).
        key_dim: width of the range projection (32).
        radius: kernel radius (3, a 7x7 kernel).
    """

    def __init__(self, guidance_dim: int = 3, key_dim: int = 32, radius: int = 3) -> None:
        super().__init__()
        self.radius = radius
        self.diameter = 2 * radius + 1
        taps = self.diameter ** 2
        self.range_temp = nn.Parameter(torch.tensor(0.0))
        self.range_proj = _pointwise_mlp(guidance_dim, key_dim, key_dim)
        self.fixup_proj = _pointwise_mlp(guidance_dim + taps, taps, taps)
        self.sigma_spatial = nn.Parameter(torch.tensor(1.0))

    def spatial_kernel(self) -> torch.Tensor:
        """``(1, k*k, 1, 1)`` Gaussian of the normalised window offsets."""
        offsets = torch.linspace(-1, 1, self.diameter, device=self.sigma_spatial.device)
        dist2 = offsets.square()[:, None] + offsets.square()[None, :]
        return torch.exp(-dist2 / (2 * self.sigma_spatial ** 2)).reshape(1, -1, 1, 1)

    def range_kernel(self, guidance: torch.Tensor) -> torch.Tensor:
        """``(B, k*k, H, W)`` softmax of the scaled similarities of the projected guidance."""
        proj = self.range_proj(guidance)
        temperature = self.range_temp.exp().clamp_min(1e-4).clamp_max(1e4)
        logits = local_similarity(proj, proj, self.diameter, padding_mode='reflect')
        return F.softmax(temperature * logits, dim=1)

    def kernels(self, guidance: torch.Tensor) -> torch.Tensor:
        """The final per-pixel kernels ``(B, k*k, H, W)``."""
        kernel = self.range_kernel(guidance) * self.spatial_kernel()
        kernel = kernel / kernel.sum(1, keepdim=True).clamp(1e-7)
        return kernel + 0.1 * self.fixup_proj(torch.cat([kernel, guidance], dim=1))

    def forward(self, source: torch.Tensor, guidance: torch.Tensor) -> torch.Tensor:
        """``source (B, C, h, w)``, ``guidance (B, 3, H, W)`` -> ``(B, C, H, W)``."""
        enlarged = F.interpolate(source, size=tuple(guidance.shape[-2:]), mode='bicubic', align_corners=False)
        return local_weighted_sum(self.kernels(guidance), enlarged, self.diameter, padding_mode='reflect')


@MODELS.register_module()
class JBUStack(BaseUpsampler):
    """FeatUp (JBU): four x2 joint bilateral stages guided by the image, then a residual 1x1 projection.

    Stage ``k`` pools the image to twice the current grid (``adaptive_avg_pool2d``, which also enlarges a
    small image) and upsamples the source with :class:`JBUStage`; the result after four stages (x16) is
    ``source + 0.1 * fixup_proj(source)``. Following the JAFAR evaluation protocol, it is then resized
    bilinearly (``align_corners=False``) to the requested output size when that is not 16x the feature grid.
    Stages that would only be shrunk again are skipped (the fewest that cover the output size run), unless
    ``num_steps`` fixes how many run (JAFAR's BEV protocol: "JBU x2 steps, then resize", ``num_steps=2``).
    The per-pixel adaptive convolution is exact pure PyTorch on every device (same row-major accumulation as
    FeatUp's C++ kernel); FeatUp's compiled CUDA extension is not needed.

    Official checkpoints load strictly: a bare state dict with FeatUp's key names, or the released Lightning
    files (e.g. ``dinov2_jbu_stack_cocostuff.ckpt``) where the weights sit in ``state_dict`` under the prefix
    ``upsampler.`` next to the backbone (``model.0.*``), training modules (``downsampler.*``, ``scale_net.*``)
    and the LayerNorm over channels that FeatUp's hub model applies to the backbone features first
    (``model.1.norm.*``). That norm is loaded into :attr:`feature_norm` when the module is built with
    ``feature_norm=True`` (reproducing ``torch.hub.load('mhamilton723/FeatUp', 'dinov2')``); with
    ``feature_norm=False`` (default, FeatUp's bare ``JBUStack``) it is dropped and a log line says so.

    Args:
        feat_dim: feature channels (384 for ViT-S).
        feature_norm: apply a LayerNorm over channels to the features before the stack (FeatUp hub model).
        num_stages: x2 stages (4, FeatUp's x16 and its checkpoints; necks build fewer for smaller up-scales).
        num_steps: x2 stages run on every call (1..num_stages), then the residual projection and the resize;
            None (default): the fewest that cover the output size. All ``num_stages`` are built either way, so
            the released checkpoints load unchanged.
        **kwargs: :class:`BaseUpsampler`'s arguments; without an ``output_size`` the output has the image's size.

    Example:
        >>> import torch
        >>> up = JBUStack(feat_dim=384).eval()
        >>> up(torch.randn(1, 3, 64, 64), torch.randn(1, 384, 4, 4), (64, 64)).shape
        torch.Size([1, 384, 64, 64])
    """

    channels_arg = 'feat_dim'
    checkpoint_ignored_prefixes = ('model.', 'downsampler.', 'scale_net.')
    stages_arg = 'num_stages'

    def __init__(self, feat_dim: int = 384, feature_norm: bool = False, num_stages: int = 4,
                 num_steps: Optional[int] = None, **kwargs) -> None:
        super().__init__(**kwargs)
        if num_steps is not None and not 1 <= num_steps <= num_stages:
            raise ValueError(f'JBUStack: num_steps must be None or in [1, num_stages={num_stages}], got {num_steps}')
        self.feat_dim = feat_dim
        self.feature_norm = ChannelNorm(feat_dim) if feature_norm else None
        self.num_stages, self.num_steps = num_stages, num_steps
        add_stages(self, num_stages, JBUStage)
        self.fixup_proj = nn.Sequential(nn.Dropout2d(0.2), nn.Conv2d(feat_dim, feat_dim, kernel_size=1))

    def forward_stack(self, image: torch.Tensor, features: torch.Tensor, return_stages: bool = False,
                      output_size: Optional[Tuple[int, int]] = None):
        """The official x16 output (after the optional feature norm); with ``return_stages`` also the list of
        the outputs of every stage. With ``output_size``, stages stop once the grid covers it (unless
        ``num_steps`` fixes their number)."""
        source = features if self.feature_norm is None else self.feature_norm(features)
        outs = run_stages(self, source, image, output_size, self.num_steps)
        out = outs[-1] + 0.1 * self.fixup_proj(outs[-1])
        return (out, outs) if return_stages else out

    def upsample(self, image: torch.Tensor, features: torch.Tensor, output_size: Tuple[int, int]) -> torch.Tensor:
        return resize_features(self.forward_stack(image, features, output_size=output_size), output_size)

    # ------------------------------------------------------------------ checkpoints
    def _adapt_checkpoint(self, state_dict: Dict, prefix: str, *args) -> None:
        nested = state_dict.get(prefix + 'state_dict')
        if isinstance(nested, dict):  # a whole Lightning file passed to load_state_dict: keep its weights only
            for key in [k for k in state_dict if k.startswith(prefix)]:
                del state_dict[key]
            state_dict.update({prefix + k: v for k, v in nested.items()})
        lightning = prefix + 'upsampler.'
        if any(k.startswith(lightning) for k in state_dict):
            norm_keys = {prefix + 'model.1.norm.' + n: prefix + 'feature_norm.norm.' + n for n in ('weight', 'bias')}
            for key in [k for k in state_dict if k.startswith(lightning)]:
                state_dict[prefix + key[len(lightning):]] = state_dict.pop(key)
            if self.feature_norm is not None:
                for old, new in norm_keys.items():
                    if old in state_dict:
                        state_dict[new] = state_dict.pop(old)
            elif any(k in state_dict for k in norm_keys):
                print_log('JBUStack: the checkpoint holds the channel LayerNorm FeatUp applies to the backbone '
                          'features (model.1.norm.*); it is not used (build with feature_norm=True to apply it)',
                          logger='current')
        super()._adapt_checkpoint(state_dict, prefix, *args)

    def check_checkpoint(self, state_dict: Dict[str, torch.Tensor]) -> None:
        super().check_checkpoint(state_dict)
        check_dim('JBUStack', state_dict, 'fixup_proj.1.weight', 0, 'feat_dim', self.feat_dim)
        if self.feature_norm is not None and state_dict and 'feature_norm.norm.weight' not in state_dict:
            raise ValueError('JBUStack(feature_norm=True): the checkpoint has no channel norm (model.1.norm.* or '
                             'feature_norm.norm.*); build with feature_norm=False for bare JBUStack weights')
