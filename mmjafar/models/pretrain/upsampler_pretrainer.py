"""Task-agnostic pretraining of a feature upsampler on a frozen backbone (JAFAR's objective), as an mmengine model."""
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.dist import get_dist_info
from mmengine.model import BaseModel

from mmjafar.registry import MODELS
from mmjafar.utils.normalization import IMAGENET_MEAN_255, IMAGENET_STD_255
from ..layers.sizes import scaled_size, to_size
from ..upsamplers.base import BaseUpsampler


def round_to_multiple(value: float, multiple: int) -> int:
    """Nearest positive multiple of ``multiple`` (at least one multiple)."""
    return max(multiple, multiple * int(round(value / multiple)))


def gaussian_blur(image: torch.Tensor, kernel_size: int, sigma: float) -> torch.Tensor:
    """Depth-wise Gaussian blur with reflect padding, ``(B, C, H, W) -> (B, C, H, W)``."""
    half = kernel_size // 2
    x = torch.arange(kernel_size, dtype=torch.float32, device=image.device) - half
    k1 = torch.exp(-x ** 2 / (2 * sigma ** 2))
    k1 = (k1 / k1.sum()).to(image.dtype)
    c = image.shape[1]
    out = F.pad(image, (half, half, half, half), mode='reflect')
    out = F.conv2d(out, k1.view(1, 1, 1, -1).expand(c, 1, 1, kernel_size), groups=c)
    return F.conv2d(out, k1.view(1, 1, -1, 1).expand(c, 1, kernel_size, 1), groups=c)


def seeded_generator(*keys: int) -> torch.Generator:
    """A CPU generator whose stream depends only on ``keys`` (well mixed by numpy's SeedSequence)."""
    state = np.random.SeedSequence([int(k) for k in keys]).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


@MODELS.register_module()
class UpsamplerPretrainer(BaseModel):
    """Frozen backbone + trainable upsampler, trained to predict high-res features from low-res ones.

    One training step on a normalised batch ``x`` of ``(B, 3, S, S)`` images (JAFAR, Sec. 3.3)::

        F_hr = backbone(x)                                   # (B, C, S/p, S/p), the target
        d ~ U(downsample_range); s = round(S / d) to a multiple of p
        F_lr = backbone(resize(x, s))                         # (B, C, s/p, s/p)
        g = resize(x, guidance_scale * S)                     # guidance image (x0.5 by default, as officially)
        loss_hr = loss(upsampler(g, F_lr, F_hr grid), F_hr)
        # optional consistency term of the official release (consistency_weight > 0):
        loss_consistency = w * loss(upsampler(blur/noise(g), F_hr, consistency_size),
                                    no_grad(upsampler(g, F_hr, consistency_size)))

    Randomness (the factor ``d``, the blur/noise choices and the noise itself) comes from generators keyed by
    ``(seed, step)`` and, for the noise, by the sample's global index, where ``step`` is a buffer saved in the
    checkpoints. Runs are therefore reproducible, resumable bit for bit, and independent of the number of
    processes the global batch is split over (the index assumes mmengine's samplers, which deal samples to
    ranks round-robin). The frozen backbone is left out of ``state_dict`` (it is rebuilt from its own
    weights), so checkpoints hold only the upsampler, the step and the optimizer.

    Args:
        backbone: config of a frozen mmjafar backbone (e.g. ``TimmViT``) returning ``GuidedFeatures`` and
            exposing ``embed_dim`` and ``patch_size``.
        upsampler: config of the upsampler; ``v_dim=None`` takes the backbone's ``embed_dim``.
        loss: config of the feature loss (:class:`CosineMSELoss` by default, the paper's eq. 3).
        data_preprocessor: mmengine data preprocessor (default: ``ImgDataPreprocessor`` with ImageNet mean/std).
        feature_index: which backbone map is upsampled (default the last).
        downsample_range: ``(lo, hi)`` of the random downsampling factor d (paper: [2, 4]).
        guidance_scale: resize factor of the guidance image relative to the input (official training: 0.5).
        consistency_weight: weight of the consistency term (official release: 0.1; 0 disables it).
        consistency_size: output size of the consistency term (official: 224); None: the guidance size.
        blur_prob, blur_kernel, blur_sigma, noise_prob, noise_std: guidance perturbation of the consistency term,
            in [0, 1] pixel units (official: 0.5, 5, 1.0, 0.3, 0.02).
        seed: seed of the pretraining randomness (independent of mmengine's global seed).
        init_cfg: mmengine init config.
    """

    def __init__(self, backbone: dict, upsampler: dict, loss: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None, feature_index: int = -1,
                 downsample_range: Sequence[float] = (2.0, 4.0), guidance_scale: float = 0.5,
                 consistency_weight: float = 0.0, consistency_size: Optional[Union[int, Sequence[int]]] = (224, 224),
                 blur_prob: float = 0.5, blur_kernel: int = 5, blur_sigma: float = 1.0, noise_prob: float = 0.3,
                 noise_std: float = 0.02, seed: int = 0, init_cfg: Optional[dict] = None) -> None:
        if data_preprocessor is None:
            data_preprocessor = dict(type='ImgDataPreprocessor', mean=IMAGENET_MEAN_255, std=IMAGENET_STD_255)
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        lo, hi = (float(v) for v in downsample_range)
        if not 1 <= lo <= hi:
            raise ValueError(f'downsample_range must satisfy 1 <= lo <= hi, got {downsample_range!r}')
        if not 0 < guidance_scale <= 1:
            raise ValueError(f'guidance_scale must be in (0, 1], got {guidance_scale}')
        if blur_kernel % 2 != 1:
            raise ValueError(f'blur_kernel must be odd, got {blur_kernel}')
        self.backbone = MODELS.build(backbone)
        for attr in ('embed_dim', 'patch_size'):
            if not isinstance(getattr(self.backbone, attr, None), int):
                raise TypeError(f'UpsamplerPretrainer: the backbone {type(self.backbone).__name__} has no integer '
                                f'`{attr}` attribute; use an mmjafar backbone such as TimmViT')
        if any(p.requires_grad for p in self.backbone.parameters()):
            raise ValueError('UpsamplerPretrainer: the backbone has trainable parameters; pretraining keeps it '
                             'frozen: build it with frozen=True')
        upsampler = dict(upsampler)
        if 'v_dim' in upsampler and upsampler['v_dim'] is None:
            upsampler['v_dim'] = self.backbone.embed_dim
        self.upsampler = MODELS.build(upsampler)
        if not isinstance(self.upsampler, BaseUpsampler):
            raise TypeError(f'UpsamplerPretrainer: upsampler must be a BaseUpsampler, got {type(self.upsampler)}')
        channels = self.upsampler.in_channels
        if channels is not None and channels != self.backbone.embed_dim:
            raise ValueError(f'UpsamplerPretrainer: the upsampler is built for {channels} feature channels but the '
                             f'backbone {getattr(self.backbone, "model_name", "")} gives {self.backbone.embed_dim}; '
                             f'set upsampler.v_dim={self.backbone.embed_dim} (or v_dim=None to take it from the '
                             'backbone), or use the backbone the upsampler checkpoint was trained for')
        self.criterion = MODELS.build(loss if loss is not None else dict(type='CosineMSELoss'))
        self.feature_index = feature_index
        self.downsample_range = (lo, hi)
        self.guidance_scale = guidance_scale
        self.consistency_weight = consistency_weight
        self.consistency_size = None if consistency_size is None else to_size(consistency_size, 'consistency_size')
        self.blur_prob, self.blur_kernel, self.blur_sigma = blur_prob, blur_kernel, blur_sigma
        self.noise_prob, self.noise_std = noise_prob, noise_std
        self.seed = seed
        self.register_buffer('step', torch.zeros((), dtype=torch.long))
        self._register_state_dict_hook(_drop_backbone_keys)
        self.register_load_state_dict_post_hook(_ignore_missing_backbone_keys)

    # ------------------------------------------------------------------ pieces
    @torch.no_grad()
    def extract(self, image: torch.Tensor) -> torch.Tensor:
        """Frozen backbone features ``(B, 3, H, W) -> (B, C, H/p, W/p)`` (the ``feature_index`` map)."""
        p = self.backbone.patch_size
        if image.shape[-2] % p or image.shape[-1] % p:
            raise ValueError(f'UpsamplerPretrainer: image size {tuple(image.shape[-2:])} is not a multiple of the '
                             f'backbone patch size {p}; set img_size to a multiple of {p}')
        return self.backbone(image)[self.feature_index]

    def lowres_size(self, size: Tuple[int, int], factor: float) -> Tuple[int, int]:
        p = self.backbone.patch_size
        return round_to_multiple(size[0] / factor, p), round_to_multiple(size[1] / factor, p)

    def guidance(self, image: torch.Tensor) -> torch.Tensor:
        if self.guidance_scale == 1:
            return image
        size = scaled_size(image.shape[-2:], self.guidance_scale)
        return F.interpolate(image, size=size, mode='bilinear', align_corners=False)

    def _pixel_stats(self, image: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        mean = getattr(self.data_preprocessor, 'mean', None)
        std = getattr(self.data_preprocessor, 'std', None)
        if mean is None or std is None:
            mean, std = torch.tensor(IMAGENET_MEAN_255), torch.tensor(IMAGENET_STD_255)
        return (mean.view(1, -1, 1, 1).to(image) / 255, std.view(1, -1, 1, 1).to(image) / 255)

    def perturb(self, image: torch.Tensor, step: int) -> torch.Tensor:
        """Blur and/or noise a normalised guidance image in [0, 1] pixel space (the consistency term's input)."""
        gen = seeded_generator(self.seed, step, 1)
        blur = bool(torch.rand((), generator=gen) < self.blur_prob)
        noise = bool(torch.rand((), generator=gen) < self.noise_prob)
        mean, std = self._pixel_stats(image)
        pixels = image * std + mean
        if blur:
            pixels = gaussian_blur(pixels, self.blur_kernel, self.blur_sigma)
        if noise:
            rank, world = get_dist_info()
            noises = [torch.randn(image.shape[1:], generator=seeded_generator(self.seed, step, 2, j * world + rank))
                      for j in range(image.shape[0])]
            pixels = pixels + self.noise_std * torch.stack(noises).to(pixels)
        return (pixels.clamp(0, 1) - mean) / std

    # ------------------------------------------------------------------ modes
    def forward(self, inputs: torch.Tensor, data_samples: Optional[List] = None,
                mode: str = 'tensor') -> Union[Dict[str, torch.Tensor], torch.Tensor]:
        """``mode='loss'``: the loss dict of one step; ``'tensor'``: upsampled features ``(B, C, H, W)`` of
        ``inputs`` at the input resolution (guidance = the input)."""
        if mode == 'loss':
            return self.loss(inputs)
        if mode == 'tensor':
            return self.upsampler(inputs, self.extract(inputs), tuple(inputs.shape[-2:]))
        raise ValueError(f"UpsamplerPretrainer: mode must be 'loss' or 'tensor', got {mode!r} (pretraining has "
                         'no predict mode; evaluate the upsampler with the held-out hook)')

    def loss(self, inputs: torch.Tensor) -> Dict[str, torch.Tensor]:
        step = int(self.step)
        target = self.extract(inputs)
        lo, hi = self.downsample_range
        factor = lo + (hi - lo) * float(torch.rand((), generator=seeded_generator(self.seed, step, 0)))
        small = F.interpolate(inputs, size=self.lowres_size(tuple(inputs.shape[-2:]), factor), mode='bilinear',
                              align_corners=False)
        lowres = self.extract(small)
        guidance = self.guidance(inputs)
        terms = self.criterion(self.upsampler(guidance, lowres, tuple(target.shape[-2:])), target)
        losses = dict(loss_hr=sum(terms.values()), downsample_factor=inputs.new_tensor(factor))
        losses.update({f'hr_{k}': v.detach() for k, v in terms.items()})
        if self.consistency_weight > 0:
            size = self.consistency_size or tuple(guidance.shape[-2:])
            with torch.no_grad():
                clean = self.upsampler(guidance, target, size)
            terms = self.criterion(self.upsampler(self.perturb(guidance, step), target, size), clean)
            losses['loss_consistency'] = self.consistency_weight * sum(terms.values())
        if self.training:
            self.step += 1
        return losses


def _drop_backbone_keys(module: UpsamplerPretrainer, state_dict: Dict, prefix: str, local_metadata) -> None:
    for key in [k for k in state_dict if k.startswith(prefix + 'backbone.')]:
        del state_dict[key]


def _ignore_missing_backbone_keys(module: UpsamplerPretrainer, incompatible_keys) -> None:
    # the frozen backbone is not saved (see _drop_backbone_keys): its absence is expected
    missing = incompatible_keys.missing_keys
    missing[:] = [k for k in missing if not ('.' + k).startswith(('.backbone.', '.module.backbone.'))]
