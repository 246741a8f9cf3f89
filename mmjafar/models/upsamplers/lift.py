"""LiFT: a lightweight x2 feature upsampler for ViTs (Suri, Walmer et al., ECCV 2024), checkpoint-compatible."""
from typing import Dict, Optional, Tuple

import torch
from torch import nn

from mmjafar.registry import MODELS
from ..layers.checkpoint_checks import check_dim
from ..layers.conv_bn import conv_bn_relu
from ..layers.resize import resize_features, resize_guidance
from .base import BaseUpsampler, SizeLike


class _LiFTUp(nn.Module):
    """Transposed-conv x2 of ``[features, image code]``, joined with the finer image code, then two 3x3 convs."""

    def __init__(self, in_channels: int, out_channels: int, image_channels: int = 32) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(in_channels, in_channels // 2, kernel_size=2, stride=2)
        self.conv_1 = nn.Module()
        self.conv_1.double_conv = nn.Sequential(
            *conv_bn_relu(in_channels // 2 + image_channels, out_channels, bias=False),
            *conv_bn_relu(out_channels, out_channels, bias=False))

    def forward(self, x: torch.Tensor, image_code: torch.Tensor) -> torch.Tensor:
        return self.conv_1.double_conv(torch.cat([self.up(x), image_code], dim=1))


@MODELS.register_module()
class LiFT(BaseUpsampler):
    """LiFT: the image is encoded by strided convolutions at 1/(p/2) and 1/p of its size (``p`` the patch
    size); the features concatenated with the coarse code go through a transposed convolution (x2), are joined
    with the finer code and refined by two 3x3 conv-BN-ReLU layers and a 1x1 projection back to ``C`` channels.

    One stage doubles the grid. Each stage sees the image resized to ``p`` times its input grid (bilinear when
    enlarging, area when shrinking; untouched when it already has that size, which gives the official forward
    exactly). ``num_stages`` stages are applied with shared weights (upstream's iterative use, where the image is
    enlarged x2 between iterations), then, as in the JAFAR evaluation protocol, the result is resized bilinearly
    (``align_corners=False``) to the requested output size.

    Layouts: features are ``(B, C, h, w)``; with ``pre_shape=True`` they may also be ViT tokens ``(B, h*w, C)``
    (row-major over the ``H/p x W/p`` grid of the image, no CLS token; the default output grid is then the
    stages' own ``2**num_stages`` times the token grid, as upstream), and with ``post_shape=True`` the output is
    returned as tokens ``(B, H_out*W_out, C)``, as upstream's default module does.

    Official checkpoints (plain state dicts, e.g. ``lift_dino_vits16.pth``; DDP ``module.`` prefixes are
    stripped) load strictly.

    Args:
        in_channels: feature channels (384 for ViT-S).
        patch_size: backbone patch size, 8 or 16 (sets the image branch's strides).
        pre_shape: accept token inputs ``(B, T, C)`` as well.
        post_shape: return tokens ``(B, T_out, C)``.
        num_stages: x2 stages before the final resize (1: LiFT as trained; more: iterative LiFT).
        **kwargs: :class:`BaseUpsampler`'s arguments; without an ``output_size`` the output has the image's size.

    Example:
        >>> import torch
        >>> up = LiFT(in_channels=384, patch_size=16).eval()
        >>> up(torch.randn(1, 3, 128, 128), torch.randn(1, 384, 8, 8), (16, 16)).shape
        torch.Size([1, 384, 16, 16])
    """

    channels_arg = 'in_channels'

    def __init__(self, in_channels: int = 384, patch_size: int = 16, pre_shape: bool = False,
                 post_shape: bool = False, num_stages: int = 1, **kwargs) -> None:
        super().__init__(**kwargs)
        if patch_size not in (8, 16):
            raise ValueError(f'LiFT supports patch_size 8 or 16 (as upstream), got {patch_size}')
        if num_stages < 1:
            raise ValueError(f'LiFT: num_stages must be at least 1, got {num_stages}')
        self.in_channels, self.patch_size = in_channels, patch_size
        self.pre_shape, self.post_shape, self.num_stages = pre_shape, post_shape, num_stages
        self.up1 = _LiFTUp(in_channels + 32, in_channels // 2)
        self.outc = nn.Conv2d(in_channels // 2, in_channels, kernel_size=1)
        self.image_convs_1 = nn.Sequential(*conv_bn_relu(3, 32, stride=2), *conv_bn_relu(32, 32, stride=2))
        self.scale_adapter = nn.MaxPool2d(2, 2) if patch_size == 16 else nn.Identity()
        self.image_convs_2 = nn.Sequential(*conv_bn_relu(32, 32, stride=2))

    def stage(self, image: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        """One official LiFT pass: ``image (B, 3, p*h, p*w)``, ``features (B, C, h, w)`` -> ``(B, C, 2h, 2w)``."""
        fine = self.scale_adapter(self.image_convs_1(image))
        coarse = self.image_convs_2(fine)
        if coarse.shape[-2:] != features.shape[-2:]:
            raise ValueError(f'LiFT: the image {tuple(image.shape[-2:])} must be patch_size={self.patch_size} '
                             f'times the feature grid {tuple(features.shape[-2:])}')
        return self.outc(self.up1(torch.cat([features, coarse], dim=1), fine))

    def upsample(self, image: torch.Tensor, features: torch.Tensor, output_size: Tuple[int, int]) -> torch.Tensor:
        out = features
        for _ in range(self.num_stages):
            h, w = out.shape[-2:]
            out = self.stage(resize_guidance(image, (self.patch_size * h, self.patch_size * w)), out)
        return resize_features(out, output_size)

    def forward(self, image, features: Optional[torch.Tensor] = None, output_size: Optional[SizeLike] = None):
        """As :meth:`BaseUpsampler.forward`, plus the token layouts of ``pre_shape`` / ``post_shape``."""
        if torch.is_tensor(features) and features.dim() == 3:
            if not self.pre_shape:
                raise ValueError('LiFT: got token features (B, T, C); build with pre_shape=True to accept them, or '
                                 'pass (B, C, h, w) maps')
            if image is None:
                raise ValueError('LiFT needs the guidance image; got image=None')
            h, w = image.shape[-2] // self.patch_size, image.shape[-1] // self.patch_size
            if features.shape[1] != h * w:
                raise ValueError(f'LiFT: {features.shape[1]} tokens do not fill the {h}x{w} patch grid of the '
                                 f'{tuple(image.shape[-2:])} image (pass tokens without the CLS token)')
            features = features.transpose(1, 2).reshape(features.shape[0], -1, h, w)
            if output_size is None and self.default_output_size is None and self.scale_factor is None:
                output_size = (h << self.num_stages, w << self.num_stages)  # upstream: tokens of the x2 grid
        out = super().forward(image, features, output_size)
        if self.post_shape and torch.is_tensor(out):
            out = out.flatten(2).transpose(1, 2)
        return out

    def check_checkpoint(self, state_dict: Dict[str, torch.Tensor]) -> None:
        super().check_checkpoint(state_dict)
        check_dim('LiFT', state_dict, 'outc.weight', 0, 'in_channels', self.in_channels)
