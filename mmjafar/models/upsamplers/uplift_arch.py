"""UPLiFT's architecture: the released models' presets and the building blocks of its encoder, decoder and refiner,
in the layout (and parameter names) of the official configs (``uplift/configs/*.yaml``) and checkpoints."""
from typing import Dict, List, Mapping, Optional

import torch
import torch.nn.functional as F
from torch import nn

from ..layers.channel_norm import ChannelsFirstLayerNorm
from ..layers.local_attender import channel_residual
from ..layers.resize import resize_features


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


class BlockGroup(nn.Module):
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


def join_code(x: torch.Tensor, skip: Optional[torch.Tensor], noise_channels: int, noise_scale: float,
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


class UPLiFTEncoder(nn.Module):
    """The image encoder: ``block_0`` then ``down_steps`` pairs (``down_i``, ``block_i``); returns every group's
    output, finest first."""

    def __init__(self, in_channels: int, cfg: Mapping) -> None:
        super().__init__()
        self.down_steps = int(cfg['down_steps'])
        if not 0 <= self.down_steps <= 4:
            raise ValueError(f'UPLiFT: encoder down_steps must be 0..4, got {self.down_steps}')
        self.block_0 = BlockGroup(in_channels, cfg['block_0'])
        self.out_channels = [int(cfg['block_0']['hc'][-1])]
        for i in range(1, self.down_steps + 1):
            self.add_module(f'down_{i}', _Resample(self.out_channels[-1], cfg[f'down_{i}'], up=False))
            self.add_module(f'block_{i}', BlockGroup(self.out_channels[-1], cfg[f'block_{i}']))
            self.out_channels.append(int(cfg[f'block_{i}']['hc'][-1]))

    def forward(self, x: torch.Tensor) -> List[torch.Tensor]:
        outs = [self.block_0(x)]
        for i in range(1, self.down_steps + 1):
            outs.append(getattr(self, f'block_{i}')(getattr(self, f'down_{i}')(outs[-1])))
        return outs


class UPLiFTDecoder(nn.Module):
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
        self.block_0 = BlockGroup(in_channels + enc_channels[-1] + self.noise_channels, cfg['block_0'])
        channels = int(cfg['block_0']['hc'][-1])
        for i in range(1, self.up_steps + 1):
            self.add_module(f'up_{i}', _Resample(channels, cfg[f'up_{i}'], up=True))
            joined = channels + enc_channels[-1 - i] + self.noise_channels
            self.add_module(f'block_{i}', BlockGroup(joined, cfg[f'block_{i}']))
            channels = int(cfg[f'block_{i}']['hc'][-1])
        self.out_channels = channels
        self.has_outc = not attender
        if self.has_outc:
            self.outc = nn.Conv2d(channels, in_channels, kernel_size=1)
            self.residual_outc = cfg.get('residual_outc', True)
            self.out_channels = in_channels

    def forward(self, x: torch.Tensor, codes: List[torch.Tensor]) -> torch.Tensor:
        x = self.block_0(join_code(x, codes[-1], self.noise_channels, self.noise_scale, self.resample))
        for i in range(1, self.up_steps + 1):
            x = getattr(self, f'up_{i}')(x)
            x = join_code(x, codes[-1 - i], self.noise_channels, self.noise_scale, self.resample)
            x = getattr(self, f'block_{i}')(x)
        if not self.has_outc:
            return x
        out = self.outc(x)
        return channel_residual(x, out) if self.residual_outc else out
