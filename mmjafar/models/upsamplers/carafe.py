"""CARAFE: Content-Aware ReAssembly of FEatures (Wang et al., ICCV 2019), stacked x2 stages."""
from typing import Dict, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from mmjafar.registry import MODELS
from ..layers.checkpoint_checks import check_dim
from ..layers.attention_impl import check_attn_impl, use_kernel_impl
from ..layers.local_window import local_weighted_sum
from ..layers.resize import resize_features
from ..layers.stages import add_stages, run_stages
from .base import BaseUpsampler


def _mmcv_carafe():
    """mmcv's compiled CARAFE op, or None when mmcv (with its ``_ext`` ops) is not installed."""
    try:
        from mmcv.ops import carafe
    except (ImportError, OSError):
        return None
    return carafe


class CARAFEStage(nn.Module):
    """One CARAFE x``scale`` stage with mmcv ``CARAFEPack``'s layout (``channel_compressor``, ``content_encoder``).

    A 1x1 convolution compresses the features, a ``encoder_kernel`` convolution predicts
    ``group * up_kernel^2`` kernel logits per output pixel (pixel-shuffled), softmax-normalised over each
    ``up_kernel x up_kernel`` window; every output pixel is the kernel-weighted sum of the window around its
    parent pixel (zeros outside the map).

    Args:
        channels: feature channels.
        scale: upsampling ratio of the stage.
        up_kernel: reassembly kernel size.
        up_group: channel groups sharing one kernel.
        encoder_kernel, encoder_dilation: content encoder convolution.
        compressed_channels: width after the channel compressor.
        impl: (:mod:`~mmjafar.models.layers.attention_impl`) None (the process-wide default, 'auto'), 'auto'
            (mmcv's op when it supports the tensor's device and dtype and mmcv was built with CUDA, else torch),
            'torch' or 'reference' (exact pure PyTorch, any device) or 'mmcv' (mmcv's CUDA op; an error where it
            cannot run). Also an attribute.
    """

    def __init__(self, channels: int, scale: int = 2, up_kernel: int = 5, up_group: int = 1, encoder_kernel: int = 3,
                 encoder_dilation: int = 1, compressed_channels: int = 64, impl: Optional[str] = None) -> None:
        super().__init__()
        if channels % up_group:
            raise ValueError(f'CARAFE: channels ({channels}) must be divisible by up_group ({up_group})')
        self.scale, self.up_kernel, self.up_group = scale, up_kernel, up_group
        self.impl = check_attn_impl(impl, ('mmcv', ), 'CARAFE')
        self.channel_compressor = nn.Conv2d(channels, compressed_channels, 1)
        self.content_encoder = nn.Conv2d(compressed_channels, up_kernel * up_kernel * up_group * scale * scale,
                                         encoder_kernel, padding=(encoder_kernel - 1) * encoder_dilation // 2,
                                         dilation=encoder_dilation)
        nn.init.xavier_uniform_(self.channel_compressor.weight)
        nn.init.zeros_(self.channel_compressor.bias)
        nn.init.normal_(self.content_encoder.weight, std=0.001)
        nn.init.zeros_(self.content_encoder.bias)

    def kernels(self, features: torch.Tensor) -> torch.Tensor:
        """``(B, G*k*k, s*h, s*w)`` reassembly kernels, each window summing to one."""
        logits = F.pixel_shuffle(self.content_encoder(self.channel_compressor(features)), self.scale)
        b, _, height, width = logits.shape
        probs = F.softmax(logits.view(b, self.up_group, -1, height, width), dim=2)
        return probs.view(b, -1, height, width)

    def reassemble(self, features: torch.Tensor, kernels: torch.Tensor) -> torch.Tensor:
        """``features (B, C, h, w)``, ``kernels (B, G*k*k, s*h, s*w)`` -> ``(B, C, s*h, s*w)``."""
        if use_kernel_impl(self.impl, 'mmcv.carafe', features, 'CARAFE'):
            carafe = _mmcv_carafe()
            if carafe is not None:
                return carafe(features.contiguous(), kernels.to(features.dtype).contiguous(), self.up_kernel,
                              self.up_group, self.scale)
        return local_weighted_sum(kernels, features, self.up_kernel, padding_mode='zeros')

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.reassemble(features, self.kernels(features))


@MODELS.register_module()
class CARAFE(BaseUpsampler):
    """Task-dependent baseline: ``num_stages`` CARAFE x2 stages (x16 by default), then bilinear to the exact size.

    The JAFAR evaluation protocol trains it jointly with the probe. It does not use the image. On CUDA the
    stages use mmcv's compiled CARAFE op when mmcv was built with CUDA (``impl='auto'``); elsewhere, or with
    ``impl='torch'``, an exact pure-PyTorch reassembly with the op's semantics (zero padding, row-major
    taps, channel groups). Each stage has mmcv ``CARAFEPack``'s parameter names, so ``CARAFEPack`` weights
    load into ``up<i>``.

    Args:
        channels: feature channels.
        num_stages: x2 stages (4: x16).
        up_kernel, up_group, encoder_kernel, encoder_dilation, compressed_channels: see :class:`CARAFEStage`
            (defaults: the CARAFE paper's and mmcv's, 5 / 1 / 3 / 1 / 64).
        impl: None, 'auto', 'torch', 'reference' or 'mmcv' (see :class:`CARAFEStage`).
        **kwargs: :class:`BaseUpsampler`'s arguments (output size, scale factor, freezing, checks, init).

    Example:
        >>> import torch
        >>> CARAFE(channels=384)(None, torch.randn(1, 384, 4, 4), (56, 56)).shape
        torch.Size([1, 384, 56, 56])
    """

    uses_image = False
    channels_arg = 'channels'
    stages_arg = 'num_stages'

    def __init__(self, channels: int = 384, num_stages: int = 4, up_kernel: int = 5, up_group: int = 1,
                 encoder_kernel: int = 3, encoder_dilation: int = 1, compressed_channels: int = 64,
                 impl: Optional[str] = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.channels = channels
        add_stages(self, num_stages, lambda: CARAFEStage(channels, 2, up_kernel, up_group, encoder_kernel,
                                                         encoder_dilation, compressed_channels, impl))

    def upsample(self, image: Optional[torch.Tensor], features: torch.Tensor,
                 output_size: Tuple[int, int]) -> torch.Tensor:
        return resize_features(run_stages(self, features, output_size=output_size)[-1], output_size)

    def check_checkpoint(self, state_dict: Dict[str, torch.Tensor]) -> None:
        super().check_checkpoint(state_dict)
        check_dim('CARAFE', state_dict, 'up1.channel_compressor.weight', 1, 'channels', self.channels)
