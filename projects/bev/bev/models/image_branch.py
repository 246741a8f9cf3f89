"""The image branch shared by the three BEV models (design brief §2-§3).

``(B, N, 3, H, W)`` normalised images -> frozen ViT (the images resized to multiples of its patch size, e.g.
224×480 -> 224×476) -> last feature map at stride 14 -> optional upsampler guided by the *original* normalised
image to ``(floor(H / s), floor(W / s))`` with ``s = target_stride`` -> trainable neck -> ``(B, N, C, h, w)``.

Without an upsampler (``upsampler=None``, JAFAR's Low-Res row) the ViT's own grid goes to the neck unchanged and
``target_stride`` is not used. Every map spans the whole image, so the view transforms sample it in normalised
image coordinates whatever its resolution (``grid_sample(align_corners=False)``); that keeps the upsampler
comparison clean.

The backbone (frozen), and the upsampler when it has no trainable parameter (frozen, or parameter-free like
``Bilinear``), run under ``no_grad``: nothing upstream of the neck is trained, and the activations of JAFAR's
attention or FeatUp's kernels are not kept for backward.

Only mmjafar's public API is used: :func:`~mmjafar.models.layers.freeze`,
:func:`~mmjafar.models.layers.scaled_size` (the one size rule: ``floor(H / s)``) and the upsamplers.
"""
from typing import Optional, Tuple, Union

import torch
from mmengine.model import BaseModule
from torch import nn

from mmjafar.models.layers import freeze, resize_features, scaled_size
from mmjafar.registry import MODELS

ConfigOrModule = Union[dict, nn.Module, None]


def build_module(cfg: ConfigOrModule, **defaults) -> Optional[nn.Module]:
    """Build a registered module from a config dict (``defaults`` filled in when absent); modules pass through."""
    if cfg is None or isinstance(cfg, nn.Module):
        return cfg
    cfg = dict(cfg)
    for key, value in defaults.items():
        cfg.setdefault(key, value)
    return MODELS.build(cfg)


@MODELS.register_module()
class BEVImageBranch(BaseModule):
    """Frozen ViT -> optional upsampler -> trainable neck, applied to every camera of a batch.

    Args:
        backbone: a ``TimmViT`` config (frozen, returns ``GuidedFeatures``) or module.
        neck: the neck config (e.g. ``BEVImageNeck``) or module.
        upsampler: any registered upsampler (``up(image, feats, out_size)``), or None for the ViT grid.
        target_stride: output stride of the upsampled map relative to the input image (8; 4 as ablation).
        freeze_upsampler: freeze the upsampler (:func:`~mmjafar.models.layers.freeze`: no gradients, eval mode
            kept) unless its config sets ``frozen``.
        init_cfg: mmengine init config.
    """

    def __init__(self, backbone: ConfigOrModule, neck: ConfigOrModule, upsampler: ConfigOrModule = None,
                 target_stride: float = 8, freeze_upsampler: bool = True, init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        if target_stride <= 0:
            raise ValueError(f'BEVImageBranch: target_stride must be positive, got {target_stride}')
        self.backbone = build_module(backbone)
        if upsampler is not None and not isinstance(upsampler, nn.Module) and upsampler.get('type') in (
                'none', 'None', 'Identity'):
            upsampler = None
        self.upsampler = build_module(upsampler)
        explicit = isinstance(upsampler, dict) and 'frozen' in upsampler
        if self.upsampler is not None and freeze_upsampler and not explicit:
            freeze(self.upsampler)
        self.neck = build_module(neck)
        self.target_stride = float(target_stride)
        self.patch_size = int(getattr(self.backbone, 'patch_size', 1))

    @property
    def out_channels(self) -> int:
        return int(self.neck.out_channels)

    def output_size(self, image_size: Tuple[int, int]) -> Tuple[int, int]:
        """Size of the feature map for images of ``image_size`` (H, W): the ViT grid without an upsampler, else
        ``(floor(H / s), floor(W / s))`` for ``s = target_stride`` (:func:`~mmjafar.models.layers.scaled_size`)."""
        if self.upsampler is None:
            return tuple(int(s) // self.patch_size for s in image_size)
        return scaled_size(image_size, stride=self.target_stride)

    def _upsampler_trainable(self) -> bool:
        return self.upsampler is not None and any(p.requires_grad for p in self.upsampler.parameters())

    def backbone_input(self, images: torch.Tensor) -> torch.Tensor:
        """The images resized (bilinear) down to the nearest multiples of the patch size, if needed."""
        height, width = images.shape[-2:]
        size = (height // self.patch_size * self.patch_size, width // self.patch_size * self.patch_size)
        if min(size) == 0:
            raise ValueError(f'BEVImageBranch: images of {height}x{width} are smaller than one '
                             f'{self.patch_size}-pixel patch')
        return images if size == (height, width) else resize_features(images, size)

    def forward(self, imgs: torch.Tensor) -> torch.Tensor:
        """``(B, N, 3, H, W)`` normalised images -> ``(B, N, C_neck, h, w)``."""
        if imgs.dim() != 5 or imgs.shape[2] != 3:
            raise ValueError(f'BEVImageBranch: expected (B, N, 3, H, W) images, got {tuple(imgs.shape)}')
        batch, cams = imgs.shape[:2]
        flat = imgs.flatten(0, 1)
        backbone_trainable = any(p.requires_grad for p in self.backbone.parameters())
        with torch.set_grad_enabled(torch.is_grad_enabled() and backbone_trainable):
            feats = self.backbone(self.backbone_input(flat))[-1]
        if self.upsampler is not None:
            with torch.set_grad_enabled(torch.is_grad_enabled() and self._upsampler_trainable()):
                feats = self.upsampler(flat, feats, self.output_size(flat.shape[-2:]))
        feats = self.neck(feats)
        return feats.unflatten(0, (batch, cams))
