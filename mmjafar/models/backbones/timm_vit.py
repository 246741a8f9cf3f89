"""Frozen timm foundation encoders (ViT, Eva/DINOv3, NaFlexViT/RADIO, ConvNeXt) as OpenMMLab backbones returning
NCHW feature maps plus the guidance image, through timm's ``forward_intermediates`` API."""
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
from mmengine.model import BaseModule
from torch import nn

from mmjafar.registry import MODELS
from mmjafar.structures import GuidedFeatures
from mmjafar.utils.normalization import IMAGENET_MEAN, IMAGENET_STD
from ..layers.freezing import FreezableMixin
from ..layers.resize import resize_features
from .timm_weights import import_timm, choose_weights, load_weights_file

__all__ = ['TimmBackbone', 'TimmViT', 'RESIZE_MODES']

RESIZE_MODES = (None, 'grid', 'image')


@MODELS.register_module()
class TimmBackbone(FreezableMixin, BaseModule):
    """Any timm encoder with ``forward_intermediates`` as a (by default frozen) backbone returning NCHW maps.

    Covers the timm families with that API: ViT (DINO, DINOv2 with or without registers, CLIP, SigLIP/SigLIP 2,
    RADIO as ViT), Eva (DINOv3 ViTs such as 'vit_small_patch16_dinov3.lvd1689m'), NaFlexViT (RADIO v3/v4, e.g.
    'naflexvit_base_patch16_radio_v3.c_radio') and CNNs (ConvNeXt, e.g. 'convnext_tiny.dinov3_lvd1689m').

    ``forward(image)`` takes the ImageNet-normalised batch ``(B, 3, H, W)`` (for token models H, W multiples of
    the patch size; any such size works, position embeddings are resampled) and returns
    :class:`~mmjafar.structures.GuidedFeatures`: one ``(B, C_i, H/s_i, W/s_i)`` map per entry of ``out_indices``
    (prefix and register tokens removed), with ``image`` the input batch, so a guided upsampler used as neck
    finds its guidance image. ``out_indices`` count timm's ``feature_info`` entries: blocks of a ViT, stages of a
    CNN. ``out_channels`` and ``out_strides`` give ``C_i`` and ``s_i`` per output (for a neck's
    ``in_channels``); ``embed_dim`` and ``patch_size`` are those of the last output (a ViT's width and patch).

    Weights, in this order: ``checkpoint`` (a local timm, original-format or mmengine file; timm's converter for
    the model family is applied) if given; else, with ``pretrained``, timm's own weights from the local Hugging
    Face cache or the hub when it is reachable; else random weights if ``random_init=True`` (with a warning);
    otherwise a ``RuntimeError`` naming these options. Loaded weights are marked initialised, so
    ``init_weights()`` of an mmengine ``Runner`` does not re-randomise them.

    Models pretrained with another normalisation (CLIP, SigLIP, RADIO: timm's ``pretrained_cfg`` mean/std) are fed
    a re-normalised copy of the input; the guidance image stays ImageNet-normalised, which is what every
    upsampler expects.

    Two costly baselines of the JAFAR paper are options (token models with a convolutional patch embedding), to
    pair with a bilinear upsampler: ``patch_stride`` < patch size ("strided": overlapping patches give a denser
    grid) and ``image_scale`` > 1 ("large image": the input is bilinearly upscaled first). ``resize_output`` then
    optionally resizes the denser maps bilinearly to the nominal ``H/p x W/p`` grid ('grid') or to the input size
    ('image').

    Args:
        model_name: timm model name, e.g. 'vit_small_patch14_dinov2.lvd142m', 'vit_small_patch16_dinov3.lvd1689m',
            'vit_base_patch16_siglip_512.v2_webli', 'naflexvit_base_patch16_radio_v3.c_radio',
            'convnext_tiny.dinov3_lvd1689m'.
        pretrained: use timm's pretrained weights (cache or hub) when no ``checkpoint`` is given.
        checkpoint: local weights file (timm or original state dict, ``.safetensors``, or an mmengine checkpoint).
        random_init: allow random weights when no pretrained weights can be had (tests, debugging).
        out_indices: ``feature_info`` entries returned (negative counts from the last).
        frozen: no gradients, eval mode kept (``train()`` does not switch it back), forward under no_grad.
        norm: apply the model's final norm to the returned maps (every block output of a ViT, as the official
            JAFAR wrapper; the last stage of a CNN).
        patch_stride: stride of the patch embedding; None keeps the patch size.
        image_scale: upscale factor applied to the input before the model (1 keeps it).
        resize_output: None, 'grid' or 'image' (see above).
        model_kwargs: extra arguments of ``timm.create_model`` (e.g. ``dict(drop_path_rate=0.1)``, or
            ``dict(depth=2)`` / ``dict(depths=(1, 1, 1, 1))`` for small tests).
        init_cfg: mmengine init config of this module.

    Example:
        >>> import torch
        >>> net = TimmBackbone('convnext_tiny.dinov3_lvd1689m', pretrained=False, random_init=True,
        ...                    out_indices=(0, 1, 2, 3))
        >>> feats = net(torch.randn(1, 3, 64, 96))
        >>> [tuple(f.shape) for f in feats], net.out_strides
        ([(1, 96, 16, 24), (1, 192, 8, 12), (1, 384, 4, 6), (1, 768, 2, 3)], [4, 8, 16, 32])
    """

    def __init__(self, model_name: str = 'vit_small_patch14_dinov2.lvd142m', pretrained: bool = True,
                 checkpoint: Optional[str] = None, random_init: bool = False, out_indices: Sequence[int] = (-1, ),
                 frozen: bool = True, norm: bool = True, patch_stride: Optional[int] = None,
                 image_scale: float = 1.0, resize_output: Optional[str] = None,
                 model_kwargs: Optional[Dict] = None, init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        timm = import_timm()
        name = type(self).__name__
        if resize_output not in RESIZE_MODES:
            raise ValueError(f'{name}: resize_output must be one of {RESIZE_MODES}, got {resize_output!r}')
        if image_scale <= 0:
            raise ValueError(f'{name}: image_scale must be positive, got {image_scale}')
        if not timm.is_model(model_name.split('.')[0]):
            raise ValueError(f'{name}: {model_name!r} is not a timm model name (see timm.list_models("vit*"), '
                             'timm.list_models("*dinov3*"))')
        self.model_name = model_name
        self.frozen = frozen
        self.norm = norm
        self.image_scale = float(image_scale)
        self.resize_output = resize_output

        # stacklevel 4: past this __init__ and FreezableMixin's construction hook, at the caller
        weights_path, use_hub = choose_weights(model_name, pretrained, checkpoint, random_init, stacklevel=4)
        self.model = self._create(timm, model_name, use_hub, dict(model_kwargs or {}))
        if not hasattr(self.model, 'forward_intermediates') or not getattr(self.model, 'feature_info', None):
            raise ValueError(f'{name}: timm model {model_name!r} has no forward_intermediates / feature_info; use a '
                             'ViT, Eva (DINOv3), NaFlexViT (RADIO) or CNN such as ConvNeXt')
        self.weights_source = 'hub' if use_hub else (weights_path or 'random')
        if weights_path is not None:
            load_weights_file(self.model, weights_path, f'{name}({model_name})')
        # timm initialised (or loaded) the model already: init_weights() of a Runner must not redo it.
        self.model.is_init = True

        self.is_token_model = hasattr(self.model, 'num_prefix_tokens')
        self.num_blocks = len(self.model.feature_info)
        self.out_indices = self._check_indices(out_indices)
        info = [self.model.feature_info[i] for i in self.out_indices]
        self.out_channels = [int(f['num_chs']) for f in info]
        self.embed_dim = self.out_channels[-1]
        if self.is_token_model:
            patch = self._patch_embed_size()
            self.patch_size = patch
            proj = getattr(getattr(self.model, 'patch_embed', None), 'proj', None)
            if patch_stride is not None:
                if not isinstance(proj, nn.Conv2d) or not getattr(self.model, 'dynamic_img_size', False):
                    raise ValueError(f'{name}: patch_stride needs a convolutional patch embedding with dynamic '
                                     f'image size (ViT, Eva); {model_name} has none')
                if not 0 < patch_stride <= patch:
                    raise ValueError(f'{name}: patch_stride must be in [1, {patch}], got {patch_stride}')
                proj.stride = (patch_stride, patch_stride)
            self.patch_stride = int(patch_stride or patch)
            strides = [self.patch_stride / self.image_scale] * len(info)
        else:
            if patch_stride is not None:
                raise ValueError(f'{name}: patch_stride applies to token models (ViTs), not to {model_name}')
            self.patch_stride = None
            strides = [int(f['reduction']) / self.image_scale for f in info]
            self.patch_size = int(max(int(f['reduction']) for f in info))
        if resize_output is not None:
            strides = [float(self.patch_size if resize_output == 'grid' else 1)] * len(info)
        self.out_strides = [int(s) if float(s).is_integer() else s for s in strides]

        mean = torch.tensor(self.model.pretrained_cfg.get('mean', IMAGENET_MEAN), dtype=torch.float32)
        std = torch.tensor(self.model.pretrained_cfg.get('std', IMAGENET_STD), dtype=torch.float32)
        inet_mean, inet_std = torch.tensor(IMAGENET_MEAN), torch.tensor(IMAGENET_STD)
        # x_model = (x * std_in + mean_in - mean) / std = x * scale + shift
        self.renormalize = not (torch.allclose(mean, inet_mean) and torch.allclose(std, inet_std))
        self.register_buffer('_renorm_scale', (inet_std / std).view(1, 3, 1, 1), persistent=False)
        self.register_buffer('_renorm_shift', ((inet_mean - mean) / std).view(1, 3, 1, 1), persistent=False)

    @staticmethod
    def _create(timm, model_name: str, use_hub: bool, model_kwargs: Dict) -> nn.Module:
        """``timm.create_model`` without a head, with dynamic image size where the family has the option."""
        kwargs = dict(pretrained=use_hub, num_classes=0, **model_kwargs)
        if 'dynamic_img_size' not in model_kwargs:
            try:
                return timm.create_model(model_name, dynamic_img_size=True, **kwargs)
            except TypeError as err:  # NaFlexViT is dynamic by design, CNNs have no position embedding
                if 'dynamic_img_size' not in str(err):
                    raise
        return timm.create_model(model_name, **kwargs)

    def _patch_embed_size(self) -> int:
        embed = getattr(self.model, 'patch_embed', None) or getattr(self.model, 'embeds', None)
        patch = getattr(embed, 'patch_size', None)
        if patch is None:
            patch = (int(self.model.feature_info[-1]['reduction']), ) * 2
        patch = tuple(patch) if isinstance(patch, (tuple, list)) else (patch, patch)
        if patch[0] != patch[1]:
            raise ValueError(f'{type(self).__name__}: non-square patches {patch} are not supported')
        return int(patch[0])

    # ------------------------------------------------------------------ forward
    def _check_indices(self, out_indices: Union[int, Sequence[int]]) -> List[int]:
        if isinstance(out_indices, int):
            out_indices = (out_indices, )
        if not out_indices:
            raise ValueError(f'{type(self).__name__}: out_indices is empty')
        indices = []
        for i in out_indices:
            j = i + self.num_blocks if i < 0 else i
            if not 0 <= j < self.num_blocks:
                raise ValueError(f'{type(self).__name__}: out_indices entry {i} is out of range for '
                                 f'{self.num_blocks} blocks/stages of {self.model_name}')
            indices.append(j)
        return indices

    def feature_grid(self, height: int, width: int) -> Tuple[int, int]:
        """Grid ``(h, w)`` of the last output for an input of ``height x width`` (after ``image_scale``)."""
        height, width = int(height * self.image_scale), int(width * self.image_scale)
        if not self.is_token_model:
            return height // self.patch_size, width // self.patch_size
        return ((height - self.patch_size) // self.patch_stride + 1,
                (width - self.patch_size) // self.patch_stride + 1)

    def forward(self, image: torch.Tensor) -> GuidedFeatures:
        """``(B, 3, H, W)`` -> GuidedFeatures of ``(B, C_i, h_i, w_i)`` maps, ``image`` attached."""
        name = type(self).__name__
        if image.dim() != 4 or image.shape[1] != 3:
            raise ValueError(f'{name}: expected a (B, 3, H, W) image batch, got {tuple(image.shape)}')
        height, width = image.shape[-2:]
        x = image
        if self.image_scale != 1.0:
            x = resize_features(x, (int(height * self.image_scale), int(width * self.image_scale)))
        if self.is_token_model and (x.shape[-2] % self.patch_size or x.shape[-1] % self.patch_size):
            raise ValueError(f'{name}: input size {tuple(x.shape[-2:])} is not a multiple of the patch size '
                             f'{self.patch_size}; resize or crop the images to multiples of {self.patch_size}')
        if self.renormalize:
            x = x * self._renorm_scale + self._renorm_shift
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.frozen):
            maps = self._intermediates(x)
        if self.resize_output is not None:
            size = (height // self.patch_size, width // self.patch_size) if self.resize_output == 'grid' \
                else (height, width)
            maps = [resize_features(m, size) for m in maps]
        return GuidedFeatures(maps, image=image)

    def _intermediates(self, x: torch.Tensor) -> List[torch.Tensor]:
        """timm's ``forward_intermediates`` for the wanted entries, in ``out_indices`` order, as NCHW maps."""
        wanted = sorted(set(self.out_indices))
        if not self.is_token_model:
            outs = self.model.forward_intermediates(x, indices=wanted, norm=self.norm, stop_early=True,
                                                    intermediates_only=True)
        else:
            # tokens (prefix removed), reshaped here: the grid of a strided patch embedding is not the one
            # timm's NCHW mode assumes
            tokens = self.model.forward_intermediates(x, indices=wanted, norm=self.norm, stop_early=True,
                                                      output_fmt='NLC', intermediates_only=True)
            grid_h, grid_w = self.feature_grid(x.shape[-2] / self.image_scale, x.shape[-1] / self.image_scale)
            outs = [t.reshape(t.shape[0], grid_h, grid_w, -1).permute(0, 3, 1, 2).contiguous() for t in tokens]
        by_index = dict(zip(wanted, outs))
        return [by_index[i] for i in self.out_indices]


@MODELS.register_module()
class TimmViT(TimmBackbone):
    """:class:`TimmBackbone` under the name the existing configs use (same arguments, same behaviour).

    Example:
        >>> import torch
        >>> vit = TimmViT(pretrained=False, random_init=True)
        >>> feats = vit(torch.randn(1, 3, 56, 84))
        >>> tuple(feats[0].shape), tuple(feats.image.shape)
        ((1, 384, 4, 6), (1, 3, 56, 84))
    """
