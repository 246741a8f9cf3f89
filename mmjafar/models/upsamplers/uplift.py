"""UPLiFT: pixel-dense features by iterated x2 steps of a convolutional decoder and a Local Attender (Walmer,
Suri, Aggarwal et al., CVPR 2026), checkpoint-compatible with the official release (``mwalmer-umd/UPLiFT``)."""
import copy
import math
import os
from typing import Dict, List, Mapping, Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch import nn

from mmjafar.registry import MODELS
from ..layers.channel_norm import ChannelsFirstLayerNorm
from ..layers.local_attender import LocalAttender, channel_residual
from ..layers.resize import resize_features
from .base import BaseUpsampler, SizeLike


def _encoder_stage(width: int) -> dict:
    return dict(block='SingleConv', norm='batch', count=1, hc=[width])


def _no_down() -> dict:
    return dict(down_op='none', factor=1.0, residual='none')


# The ``uplift:`` section of the released configs (``uplift/configs/*.yaml``), as plain dicts. The two ViT models
# share one architecture; the SD 1.5 VAE model (4-channel latents) adds a refiner and noise channels.
_VIT_ARCH = dict(
    up_factor=2, attender=17, enc_share=True,
    encoder=dict(down_steps=4, block_0=_encoder_stage(16), down_1=_no_down(), block_1=_encoder_stage(32),
                 down_2=_no_down(), block_2=_encoder_stage(64), down_3=_no_down(), block_3=_encoder_stage(128),
                 down_4=_no_down(), block_4=_encoder_stage(128)),
    decoder=dict(up_steps=1, ncat_c=0, ncat_s=1, enc_resample='nearest',
                 block_0=dict(block='DoubleConv', norm='batch', count=1, hc=[64]),
                 up_1=dict(up_op='tconv', factor=2, residual='bilinear'),
                 block_1=dict(block='DoubleConv', norm='batch', count=1, hc=[64])))


def _layer_stage(width: int, count: int) -> dict:
    return dict(block='SingleConv', norm='layer', count=count, hc=[width] * count)


_VAE_ARCH = dict(
    up_factor=2, no_UEP=True, attender=17, enc_share=True,
    encoder=dict(down_steps=4, block_0=_layer_stage(64, 2), down_1=_no_down(), block_1=_layer_stage(128, 2),
                 down_2=_no_down(), block_2=_layer_stage(256, 2), down_3=_no_down(), block_3=_layer_stage(512, 2),
                 down_4=_no_down(), block_4=_layer_stage(512, 2)),
    decoder=dict(up_steps=1, ncat_c=4, ncat_s=1, enc_resample='nearest', block_0=_layer_stage(512, 1),
                 up_1=dict(up_op='tconv', factor=2, residual='bilinear'), block_1=_layer_stage(512, 2)),
    refiner=dict(enc_resample='nearest', ncat_c=4, ncat_s=1, ref_con=-1, block_0=_layer_stage(512, 12)))

#: released models: architecture, backbone channels and patch size.
ARCHS: Dict[str, dict] = {
    'dinov2-s14': dict(arch=_VIT_ARCH, in_channels=384, patch_size=14),  # uplift_dinov2-s14.safetensors
    'dinov3-splus16': dict(arch=_VIT_ARCH, in_channels=384, patch_size=16),  # uplift_dinov3-splus16.safetensors
    'sd15-vae': dict(arch=_VAE_ARCH, in_channels=4, patch_size=8),  # uplift_sd1.5vae.safetensors
}
BLOCKS = ('IdentityBlock', 'SingleConv', 'DoubleConv', 'TransposeConv')
RESAMPLE_MODES = ('none', 'nearest', 'bilinear')


def _bilinear_scale(x: torch.Tensor, factor: float) -> torch.Tensor:
    """``nn.UpsamplingBilinear2d(scale_factor=factor)``: bilinear with ``align_corners=True``."""
    return F.interpolate(x, scale_factor=factor, mode='bilinear', align_corners=True)


class _ConvUnit(nn.Module):
    """UPLiFT's SingleConv / DoubleConv: one or two [3x3 conv (no bias) -> norm -> ReLU] layers, an optional 1x1
    conv, and a channel-adapting residual (the input cut or zero-padded to the output's channels)."""

    def __init__(self, in_channels: int, widths: List[int], norm: str, residual: bool, stride: int,
                 one_by: bool) -> None:
        super().__init__()
        if norm not in ('batch', 'layer'):
            raise ValueError(f'UPLiFT: block norm must be "batch" or "layer", got {norm!r}')
        if stride not in (1, 2):
            raise ValueError(f'UPLiFT: block stride must be 1 or 2, got {stride}')
        layers, channels = [], in_channels
        for width in widths:
            norm_layer = nn.BatchNorm2d(width) if norm == 'batch' else ChannelsFirstLayerNorm(width, eps=1e-6)
            layers += [nn.Conv2d(channels, width, 3, padding=1, bias=False, stride=stride), norm_layer,
                       nn.ReLU(inplace=True)]
            channels = width
        if one_by:
            layers.append(nn.Conv2d(channels, channels, kernel_size=1))
        self.conv = nn.Sequential(*layers)
        self.residual, self.stride = residual, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv(x)
        if not self.residual:
            return out
        return channel_residual(_bilinear_scale(x, 0.5) if self.stride == 2 else x, out)


class _TransposeUnit(nn.Module):
    """UPLiFT's TransposeConv block (LiFT's x2 step): a 2x2 stride-2 transposed convolution ``up``."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(in_channels, out_channels, kernel_size=2, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(x)


class _BlockGroup(nn.Module):
    """``count`` blocks of one type in a row (``blocks``), widths ``hc``; count 0 is the identity."""

    def __init__(self, in_channels: int, cfg: Mapping) -> None:
        super().__init__()
        kind, count = cfg['block'], int(cfg['count'])
        if kind not in BLOCKS:
            raise ValueError(f'UPLiFT: block must be one of {BLOCKS}, got {kind!r}')
        if count > len(cfg['hc']):
            raise ValueError(f'UPLiFT: block group with count={count} lists only {len(cfg["hc"])} widths in hc')
        self.count = count
        blocks, channels = [], in_channels
        for i in range(count):
            width = int(cfg['hc'][i])
            if kind == 'IdentityBlock':
                blocks.append(nn.Identity())
            elif kind == 'TransposeConv':
                blocks.append(_TransposeUnit(channels, width))
            else:
                double = kind == 'DoubleConv'
                blocks.append(_ConvUnit(channels, [width] * (2 if double else 1), cfg.get('norm', 'batch'),
                                        cfg.get('residual', True), int(cfg.get('stride', 1)),
                                        cfg.get('one_by', True)))
            channels = width
        if count > 0:
            self.blocks = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(x) if self.count > 0 else x


class _Resample(nn.Module):
    """UPLiFT's DownBlock (``down_op`` conv / max / none) or UpBlock (``up_op`` tconv / none), with an optional
    bilinear (``align_corners=True``) residual."""

    def __init__(self, channels: int, cfg: Mapping, up: bool) -> None:
        super().__init__()
        op = cfg['up_op' if up else 'down_op']
        allowed = ('tconv', 'none') if up else ('conv', 'max', 'none')
        if op not in allowed:
            raise ValueError(f'UPLiFT: {"up_op" if up else "down_op"} must be one of {allowed}, got {op!r}')
        self.factor = None if op == 'none' else cfg['factor']
        self.residual = 'none' if op == 'none' else cfg['residual']
        if self.residual not in ('bilinear', 'none'):
            raise ValueError(f'UPLiFT: residual must be "bilinear" or "none", got {self.residual!r}')
        layer = None
        if op == 'tconv':
            layer = nn.ConvTranspose2d(channels, channels, kernel_size=int(self.factor), stride=int(self.factor))
        elif op == 'conv':
            layer = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1, stride=int(1 / self.factor)),
                                  nn.BatchNorm2d(channels), nn.ReLU(inplace=True))
        elif op == 'max':
            layer = nn.MaxPool2d(2, 2)
        self.op = op
        if layer is not None:
            self.add_module('up' if up else 'down', layer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.op == 'none':
            return x
        out = (self.up if hasattr(self, 'up') else self.down)(x)
        return channel_residual(_bilinear_scale(x, self.factor), out) if self.residual == 'bilinear' else out


def _join(x: torch.Tensor, skip: Optional[torch.Tensor], noise_channels: int, noise_scale: float,
          resample: str) -> torch.Tensor:
    """``[x, skip resized to x's grid, noise]`` along the channels (upstream's feature combiner)."""
    parts = [x]
    if skip is not None:
        if resample != 'none' and tuple(skip.shape[-2:]) != tuple(x.shape[-2:]):
            skip = resize_features(skip, x.shape[-2:], mode=resample, antialias=resample == 'bilinear')
        elif tuple(skip.shape[-2:]) != tuple(x.shape[-2:]):
            raise ValueError(f'UPLiFT: encoder features {tuple(skip.shape[-2:])} do not match the decoder grid '
                             f'{tuple(x.shape[-2:])}; set enc_resample to "nearest" or "bilinear" in the arch')
        parts.append(skip)
    if noise_channels > 0:
        parts.append(noise_scale * torch.randn([x.shape[0], noise_channels, x.shape[2], x.shape[3]],
                                               device=x.device, dtype=x.dtype))
    return torch.cat(parts, dim=1)


class _Encoder(nn.Module):
    """The image encoder: ``block_0`` then ``down_steps`` pairs (``down_i``, ``block_i``); returns every group's
    output, finest first."""

    def __init__(self, in_channels: int, cfg: Mapping) -> None:
        super().__init__()
        self.down_steps = int(cfg['down_steps'])
        if not 0 <= self.down_steps <= 4:
            raise ValueError(f'UPLiFT: encoder down_steps must be 0..4, got {self.down_steps}')
        self.block_0 = _BlockGroup(in_channels, cfg['block_0'])
        self.out_channels = [int(cfg['block_0']['hc'][-1])]
        for i in range(1, self.down_steps + 1):
            self.add_module(f'down_{i}', _Resample(self.out_channels[-1], cfg[f'down_{i}'], up=False))
            self.add_module(f'block_{i}', _BlockGroup(self.out_channels[-1], cfg[f'block_{i}']))
            self.out_channels.append(int(cfg[f'block_{i}']['hc'][-1]))

    def forward(self, x: torch.Tensor) -> List[torch.Tensor]:
        outs = [self.block_0(x)]
        for i in range(1, self.down_steps + 1):
            outs.append(getattr(self, f'block_{i}')(getattr(self, f'down_{i}')(outs[-1])))
        return outs


class _Decoder(nn.Module):
    """``block_0`` on ``[features, coarsest code]``, then ``up_steps`` pairs (``up_i``, ``block_i``) each joined
    with the next finer code; ``outc`` (1x1 conv + residual) only when the model has no Local Attender."""

    def __init__(self, in_channels: int, cfg: Mapping, enc_channels: List[int], attender: bool) -> None:
        super().__init__()
        self.up_steps = int(cfg['up_steps'])
        if not 0 <= self.up_steps <= 4 or self.up_steps >= len(enc_channels):
            raise ValueError(f'UPLiFT: decoder up_steps must be 0..4 and at most the encoder\'s down_steps, got '
                             f'{self.up_steps}')
        self.noise_channels, self.noise_scale = int(cfg['ncat_c']), float(cfg['ncat_s'])
        self.resample = cfg.get('enc_resample', 'none')
        if self.resample not in RESAMPLE_MODES:
            raise ValueError(f'UPLiFT: enc_resample must be one of {RESAMPLE_MODES}, got {self.resample!r}')
        self.block_0 = _BlockGroup(in_channels + enc_channels[-1] + self.noise_channels, cfg['block_0'])
        channels = int(cfg['block_0']['hc'][-1])
        for i in range(1, self.up_steps + 1):
            self.add_module(f'up_{i}', _Resample(channels, cfg[f'up_{i}'], up=True))
            joined = channels + enc_channels[-1 - i] + self.noise_channels
            self.add_module(f'block_{i}', _BlockGroup(joined, cfg[f'block_{i}']))
            channels = int(cfg[f'block_{i}']['hc'][-1])
        self.out_channels = channels
        self.has_outc = not attender
        if self.has_outc:
            self.outc = nn.Conv2d(channels, in_channels, kernel_size=1)
            self.residual_outc = cfg.get('residual_outc', True)
            self.out_channels = in_channels

    def forward(self, x: torch.Tensor, codes: List[torch.Tensor]) -> torch.Tensor:
        x = self.block_0(_join(x, codes[-1], self.noise_channels, self.noise_scale, self.resample))
        for i in range(1, self.up_steps + 1):
            x = getattr(self, f'up_{i}')(x)
            x = _join(x, codes[-1 - i], self.noise_channels, self.noise_scale, self.resample)
            x = getattr(self, f'block_{i}')(x)
        if not self.has_outc:
            return x
        out = self.outc(x)
        return channel_residual(x, out) if self.residual_outc else out


@MODELS.register_module()
class UPLiFT(BaseUpsampler):
    """UPLiFT: an image encoder, then per x2 step a convolutional decoder on ``[features, image code]`` whose
    output guides a Local Attender over the step's input features (a softmax over 17 neighbours of each coarse
    pixel; :mod:`~mmjafar.models.layers.local_attender`), so every output is a convex combination of input
    features. Linear in time and memory.

    A call runs ``iters`` x2 steps with shared weights (default: the fewest that reach the requested size), then
    resizes bilinearly (antialiased when shrinking) to the exact output size, as the official
    ``UPLiFT.forward(img, x, outsize)``. With ``enc_share`` (released models) the image is encoded once, at its
    own size (times 16/14 for patch-14 backbones) and the code is resampled (nearest) to each step's grid.

    ``arch`` names a released model ('dinov2-s14', 'dinov3-splus16', 'sd15-vae'; it also sets the default
    ``in_channels`` and ``patch_size``) or is a dict in the layout of the ``uplift:`` section of an official
    config file (``uplift/configs/*.yaml``), so any trained UPLiFT builds. The released ``.safetensors`` files
    (bare state dicts with the official key names) load strictly by path with ``checkpoint=`` or
    ``init_cfg=dict(type='Pretrained', checkpoint=...)``; ``.pth`` files (bare, under ``uplift`` / ``state_dict``
    / ``model``, or with ``module.`` / ``uplift.`` / ``model.`` prefixes) also load with ``load_state_dict``,
    ``mmengine.runner.load_checkpoint`` or ``init_cfg``.

    The official "fast mode" (BatchNorm folding, channels-last, a Triton attender kernel, ``torch.compile``) is a
    GPU speed-up with the same result; this module runs the exact PyTorch path on every device, with
    channels-last convolutions. The Local Attender never stacks the 17 shifted maps (upstream's default path
    does; its ``low_mem`` mode does not).

    Args:
        arch: released model name or architecture dict (see above).
        in_channels: feature channels; None takes the released model's (384 for the ViT models).
        patch_size: backbone patch size; 14 enlarges the image by 16/14 before encoding (as upstream); None
            takes the released model's.
        iters: number of x2 steps per call; None: the fewest that reach the output size (0 when the output is
            not larger than the features: a plain resize).
        checkpoint: path of a released ``.safetensors`` (needs the ``safetensors`` package) or ``.pth`` file to
            load strictly at construction.
        output_size, scale_factor, frozen, check_inputs, init_cfg: see :class:`BaseUpsampler`; without an
            ``output_size`` the output has the image's size.

    Example:
        >>> import torch
        >>> up = UPLiFT(arch='dinov3-splus16').eval()
        >>> up(torch.randn(1, 3, 64, 64), torch.randn(1, 384, 4, 4), (64, 64)).shape
        torch.Size([1, 384, 64, 64])
    """

    channels_arg = 'in_channels'
    checkpoint_wrapper_keys = ('uplift', 'state_dict', 'model')

    def __init__(self, arch: Union[str, Mapping] = 'dinov2-s14', in_channels: Optional[int] = None,
                 patch_size: Optional[int] = None, iters: Optional[int] = None, checkpoint: Optional[str] = None,
                 output_size: Optional[SizeLike] = None, scale_factor: Optional[float] = None,
                 frozen: bool = False, check_inputs: bool = True, init_cfg=None) -> None:
        super().__init__(output_size=output_size, scale_factor=scale_factor, frozen=frozen,
                         check_inputs=check_inputs, init_cfg=init_cfg)
        if isinstance(arch, str):
            if arch not in ARCHS:
                raise ValueError(f'UPLiFT: arch must be one of {sorted(ARCHS)} or an architecture dict (the '
                                 f'"uplift" section of an official config), got {arch!r}')
            preset = ARCHS[arch]
            cfg = preset['arch']
            in_channels = preset['in_channels'] if in_channels is None else in_channels
            patch_size = preset['patch_size'] if patch_size is None else patch_size
        elif isinstance(arch, Mapping):
            cfg = arch
            if in_channels is None or patch_size is None:
                raise ValueError('UPLiFT: with an architecture dict, set in_channels and patch_size (the '
                                 '"backbone: channel / patch" entries of the official config)')
        else:
            raise TypeError(f'UPLiFT: arch must be a name or a dict, got {type(arch).__name__}')
        if iters is not None and iters < 0:
            raise ValueError(f'UPLiFT: iters must be >= 0 or None, got {iters}')
        self.arch_name = arch if isinstance(arch, str) else 'custom'
        self.arch = copy.deepcopy(dict(cfg))
        self.feat_dim, self.patch_size, self.iters = int(in_channels), int(patch_size), iters
        self.up_factor = int(cfg['up_factor'])
        self.enc_share = bool(cfg.get('enc_share', False))
        attender = cfg.get('attender', -1)
        self.encoder = _Encoder(3, cfg['encoder'])
        enc_channels = self.encoder.out_channels
        self.decoder = _Decoder(self.feat_dim, cfg['decoder'], enc_channels, attender=attender != -1)
        if attender != -1:
            self.attender = LocalAttender(self.decoder.out_channels, int(attender))
        self.has_attender = attender != -1
        self.has_refiner = 'refiner' in cfg
        if self.has_refiner:
            ref = cfg['refiner']
            self.ref_noise, self.ref_noise_scale = int(ref['ncat_c']), float(ref['ncat_s'])
            self.ref_resample = ref['enc_resample']
            self.ref_con = int(ref.get('ref_con', -1 - int(cfg['decoder']['up_steps'])))
            self.refiner = _BlockGroup(self.feat_dim + self.ref_noise + enc_channels[self.ref_con], ref['block_0'])
            self.ref_outc = nn.Conv2d(int(ref['block_0']['hc'][-1]), self.feat_dim, kernel_size=1)
        if checkpoint is not None:
            self.load_state_dict(read_uplift_checkpoint(checkpoint))

    @property
    def in_channels(self) -> int:
        return self.feat_dim

    # ------------------------------------------------------------------ forward
    def encode(self, image: torch.Tensor) -> List[torch.Tensor]:
        """The image code of every encoder group (patch-14 models see the image enlarged by 16/14 first)."""
        if self.patch_size == 14:
            height, width = image.shape[-2:]
            image = resize_features(image, (height * 16 // 14, width * 16 // 14), antialias=True)
        return self.encoder(image)

    def step(self, codes: List[torch.Tensor], features: torch.Tensor) -> torch.Tensor:
        """One x``up_factor`` step: ``(B, C, h, w) -> (B, C, f*h, f*w)`` given the image code."""
        x = self.decoder(features, codes)
        if self.has_attender:
            x = self.attender(x, features)
        if self.has_refiner:
            x = _join(x, codes[self.ref_con], self.ref_noise, self.ref_noise_scale, self.ref_resample)
            x = self.ref_outc(self.refiner(x))
        return x

    def num_steps(self, features: torch.Tensor, output_size: Tuple[int, int]) -> int:
        """``iters``, or the fewest x``up_factor`` steps after which the grid covers ``output_size``."""
        if self.iters is not None:
            return self.iters
        ratio = max(output_size[0] / features.shape[-2], output_size[1] / features.shape[-1])
        return max(0, math.ceil(math.log(ratio, self.up_factor) - 1e-9))

    def upsample(self, image: torch.Tensor, features: torch.Tensor, output_size: Tuple[int, int]) -> torch.Tensor:
        # channels-last: the full-resolution convolutions run 2-3x faster on CPU (same result up to rounding)
        image = image.contiguous(memory_format=torch.channels_last)
        out, codes = features.contiguous(memory_format=torch.channels_last), None
        height, width = image.shape[-2:]
        for i in range(self.num_steps(features, output_size)):
            if codes is None or not self.enc_share:
                scale = self.up_factor ** i
                scaled = image if i == 0 or self.enc_share else resize_features(
                    image, (int(height * scale), int(width * scale)), antialias=True)
                codes = self.encode(scaled)
            out = self.step(codes, out)
        return resize_features(out, output_size, antialias=True).contiguous()

    # ------------------------------------------------------------------ checkpoints
    def init_weights(self) -> None:
        """As :class:`BaseUpsampler`, plus ``init_cfg=dict(type='Pretrained', checkpoint='*.safetensors')`` for
        the released files (mmengine's loader reads only pickled checkpoints)."""
        cfg = self.init_cfg
        path = cfg.get('checkpoint') if isinstance(cfg, dict) and cfg.get('type') == 'Pretrained' else None
        if path is not None and str(path).endswith('.safetensors'):
            self.load_state_dict(read_uplift_checkpoint(str(path)))
            self._is_init = True
            self._apply_frozen()
            return
        super().init_weights()

    def _adapt_checkpoint(self, state_dict: Dict, prefix: str, *args) -> None:
        """Unwrap ``{'uplift' | 'state_dict' | 'model': ...}`` and strip ``module.`` / ``uplift.`` / ``model.``
        prefixes (upstream's training files), in any nesting, then apply the base rules."""
        changed = True
        while changed:
            changed = False
            for wrapper in self.checkpoint_wrapper_keys:
                nested = state_dict.get(prefix + wrapper)
                if isinstance(nested, dict):
                    del state_dict[prefix + wrapper]
                    state_dict.update({prefix + k: v for k, v in nested.items()})
                    extra = [k for k, v in state_dict.items() if k.startswith(prefix) and not torch.is_tensor(v)]
                    for key in extra:  # epoch counters, optimizer state: not weights
                        del state_dict[key]
                    changed = True
            ours = [k for k in state_dict if k.startswith(prefix)]
            for strip in ('module.', 'uplift.', 'model.'):
                if ours and all(k.startswith(prefix + strip) for k in ours):
                    for key in ours:
                        state_dict[prefix + key[len(prefix) + len(strip):]] = state_dict.pop(key)
                    changed = True
                    break
        super()._adapt_checkpoint(state_dict, prefix, *args)

    def check_checkpoint(self, state_dict: Dict[str, torch.Tensor]) -> None:
        super().check_checkpoint(state_dict)
        own = self.state_dict()
        wrong = [k for k, v in state_dict.items() if k in own and torch.is_tensor(v) and v.shape != own[k].shape]
        alien = [k for k in state_dict if k not in own and k.split('.')[0] in ('refiner', 'ref_outc', 'attender')]
        first = 'decoder.block_0.blocks.0.conv.0.weight'
        width_keys = {first, 'decoder.outc.weight', 'decoder.outc.bias', 'refiner.blocks.0.conv.0.weight',
                      'ref_outc.weight', 'ref_outc.bias'}
        if first in wrong and not alien and set(wrong) <= width_keys:
            found = state_dict[first].shape[1] - self.encoder.out_channels[-1] - self.decoder.noise_channels
            if found > 0:
                raise ValueError(f'UPLiFT: checkpoint has in_channels={found} but this module was built with '
                                 f'in_channels={self.feat_dim}; set in_channels={found} (and use the backbone it '
                                 'was trained for)')
        if wrong or alien:
            raise ValueError(f'UPLiFT: checkpoint does not fit arch={self.arch_name!r} (e.g. '
                             f'{(wrong + alien)[0]!r}); released files: uplift_dinov2-s14 -> arch="dinov2-s14", '
                             'uplift_dinov3-splus16 -> "dinov3-splus16", uplift_sd1.5vae -> "sd15-vae"')


def read_uplift_checkpoint(path: str) -> Dict[str, torch.Tensor]:
    """The state dict of a released ``.safetensors`` or a ``.pth`` file (wrappers are handled when loading)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f'UPLiFT: checkpoint file {path!r} does not exist; download e.g. '
                                'uplift_dinov2-s14.safetensors from the UPLiFT-upsampler Hugging Face models')
    if path.endswith('.safetensors'):
        try:
            from safetensors.torch import load_file
        except ImportError as err:  # pragma: no cover - safetensors comes with timm
            raise ImportError('UPLiFT: reading .safetensors needs the safetensors package: pip install '
                              'safetensors') from err
        return load_file(path)
    return torch.load(path, map_location='cpu', weights_only=True)
