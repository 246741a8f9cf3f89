"""UPLiFT: pixel-dense features by iterated x2 steps of a convolutional decoder and a Local Attender (Walmer,
Suri, Aggarwal et al., CVPR 2026), checkpoint-compatible with the official release (``mwalmer-umd/UPLiFT``)."""
import copy
import math
import os
from typing import Dict, List, Mapping, Optional, Tuple, Union

import torch
from torch import nn

from mmjafar.registry import MODELS
from ..layers.freezing import freeze
from ..layers.local_attender import LocalAttender
from ..layers.resize import resize_features
from .base import BaseUpsampler
from .uplift_arch import ARCHS, BlockGroup, UPLiFTDecoder, UPLiFTEncoder, join_code

__all__ = ['ARCHS', 'UPLiFT', 'read_uplift_checkpoint']


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
        **kwargs: :class:`BaseUpsampler`'s arguments; without an ``output_size`` the output has the image's size.

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
                 **kwargs) -> None:
        super().__init__(**kwargs)
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
        self.in_channels, self.patch_size, self.iters = int(in_channels), int(patch_size), iters
        self.up_factor = int(cfg['up_factor'])
        self.enc_share = bool(cfg.get('enc_share', False))
        attender = cfg.get('attender', -1)
        self.encoder = UPLiFTEncoder(3, cfg['encoder'])
        enc_channels = self.encoder.out_channels
        self.decoder = UPLiFTDecoder(self.in_channels, cfg['decoder'], enc_channels, attender=attender != -1)
        if attender != -1:
            self.attender = LocalAttender(self.decoder.out_channels, int(attender))
        self.has_attender = attender != -1
        self.has_refiner = 'refiner' in cfg
        if self.has_refiner:
            ref = cfg['refiner']
            self.ref_noise, self.ref_noise_scale = int(ref['ncat_c']), float(ref['ncat_s'])
            self.ref_resample = ref['enc_resample']
            self.ref_con = int(ref.get('ref_con', -1 - int(cfg['decoder']['up_steps'])))
            self.refiner = BlockGroup(self.in_channels + self.ref_noise + enc_channels[self.ref_con], ref['block_0'])
            self.ref_outc = nn.Conv2d(int(ref['block_0']['hc'][-1]), self.in_channels, kernel_size=1)
        if checkpoint is not None:
            self.load_state_dict(read_uplift_checkpoint(checkpoint))

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
            x = join_code(x, codes[self.ref_con], self.ref_noise, self.ref_noise_scale, self.ref_resample)
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
            if self.frozen:
                freeze(self)
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
                                 f'in_channels={self.in_channels}; set in_channels={found} (and use the backbone it '
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
