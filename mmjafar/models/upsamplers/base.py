"""The common contract of every feature upsampler: ``forward(image, features, output_size)``."""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from mmengine.logging import print_log
from mmengine.model import BaseModule

from mmjafar.structures import GuidedFeatures
from ..checkpoint_loading import StrictPretrainedMixin
from ..layers.freezing import FreezableMixin
from ..layers.sizes import SizeLike, check_scale, scaled_size, to_size, unique_sizes

__all__ = ['BaseUpsampler', 'SizeLike', 'to_size', 'unique_sizes']


class BaseUpsampler(FreezableMixin, StrictPretrainedMixin, BaseModule):
    """Base class of all upsamplers.

    Subclasses implement :meth:`upsample` ``(image, features, (H, W)) -> (B, C, H, W)``; this class validates
    inputs, resolves the output size and lets the module act as an OpenMMLab neck.

    Calls:
        * ``up(image, features, output_size)``: ``image`` is the normalised guidance ``(B, 3, H_img, W_img)`` (or
          None for methods that do not use it), ``features`` the low-res map ``(B, C, h, w)``.
        * ``up(image, features)``: the output size comes from the default policy below.
        * ``up(guided_features)`` (neck call, as ``EncoderDecoder.extract_feat`` makes it): every map of a
          :class:`~mmjafar.structures.GuidedFeatures` is upsampled with its ``image``; returns GuidedFeatures.

    Subclasses take their own arguments and pass the rest (``**kwargs``) here, so these five are written once and a
    misspelt argument still fails with a ``TypeError`` naming it.

    Args:
        output_size: default output size (int or (H, W)) when a call gives none.
        scale_factor: default output size as a multiple of the feature grid (used when ``output_size`` is None;
            floored, see :func:`~mmjafar.models.layers.sizes.scaled_size`).
        frozen: freeze all parameters and keep the module in eval mode (linear probing on a pretrained
            upsampler; :mod:`~mmjafar.models.layers.freezing`).
        check_inputs: validate shapes, batch sizes and finiteness on every call (cheap; set False for speed).
        init_cfg: mmengine init config, e.g. ``dict(type='Pretrained', checkpoint='path.pth')``: loaded strictly
            after the official-layout adaptations (a missing or unexpected key is an error); add
            ``strict=False`` to load a checkpoint partially.
    """

    #: whether :meth:`upsample` reads the guidance image.
    uses_image: bool = True
    #: name of the constructor argument that takes the feature channel count (e.g. 'v_dim' for JAFAR), or None
    #: when the module works with any channel count. Tools (benchmark, necks) use it to build a method for a
    #: given backbone; the subclass keeps the value under the same attribute name, which :attr:`in_channels`
    #: reads.
    channels_arg: Optional[str] = None
    #: keys under which official training scripts nest the weights in their checkpoint files.
    checkpoint_wrapper_keys: Tuple[str, ...] = ()
    #: key prefixes of released files that do not belong to this module and are dropped when loading.
    checkpoint_ignored_prefixes: Tuple[str, ...] = ()

    def __init__(self, output_size: Optional[SizeLike] = None, scale_factor: Optional[float] = None,
                 frozen: bool = False, check_inputs: bool = True, init_cfg=None, **unexpected) -> None:
        if unexpected:
            raise TypeError(f'{type(self).__name__}: unexpected argument(s) {sorted(unexpected)}')
        super().__init__(init_cfg=init_cfg)
        self.default_output_size = None if output_size is None else to_size(output_size)
        self.scale_factor = check_scale(scale_factor, owner=type(self).__name__)
        self.frozen = frozen
        self.check_inputs = check_inputs
        self._register_load_state_dict_pre_hook(self._adapt_checkpoint)

    # ------------------------------------------------------------------ size and validation
    @property
    def in_channels(self) -> Optional[int]:
        """Feature channels the module was built for: the value of its :attr:`channels_arg` (None: any count)."""
        if self.channels_arg is None:
            return None
        if self.channels_arg == 'in_channels':  # kept in the instance dict, under the property's own name
            return self.__dict__['in_channels']
        return getattr(self, self.channels_arg)

    @in_channels.setter
    def in_channels(self, value: int) -> None:
        if self.channels_arg != 'in_channels':
            raise AttributeError(f'{type(self).__name__}.in_channels follows {self.channels_arg}; set that instead')
        self.__dict__['in_channels'] = value

    def resolve_output_size(self, image: Optional[torch.Tensor], features: torch.Tensor,
                            output_size: Optional[SizeLike]) -> Tuple[int, int]:
        if output_size is not None:
            return to_size(output_size)
        if self.default_output_size is not None:
            return self.default_output_size
        if self.scale_factor is not None:
            return scaled_size(features.shape[-2:], self.scale_factor)
        if image is None:
            raise ValueError(f'{type(self).__name__}: no output_size given and no image to take it from; pass '
                             'output_size or build the module with output_size=... or scale_factor=...')
        return tuple(image.shape[-2:])

    def validate(self, image: Optional[torch.Tensor], features: torch.Tensor) -> None:
        name = type(self).__name__
        if not torch.is_tensor(features) or features.dim() != 4:
            raise ValueError(f'{name}: features must be a 4-D (B, C, h, w) tensor, got '
                             f'{tuple(features.shape) if torch.is_tensor(features) else type(features)}')
        if self.in_channels is not None and features.shape[1] != self.in_channels:
            raise ValueError(f'{name}: features have {features.shape[1]} channels but the module was built for '
                             f'{self.in_channels} (v_dim/in_channels); build it with the backbone\'s channel '
                             'count or load the checkpoint made for this backbone')
        if self.uses_image:
            if image is None:
                raise ValueError(f'{name} needs the guidance image; got image=None')
            if not torch.is_tensor(image) or image.dim() != 4:
                raise ValueError(f'{name}: image must be a 4-D (B, 3, H, W) tensor, got '
                                 f'{tuple(image.shape) if torch.is_tensor(image) else type(image)}')
            if image.shape[0] != features.shape[0]:
                raise ValueError(f'{name}: image batch ({image.shape[0]}) and features batch '
                                 f'({features.shape[0]}) differ')
        if self.check_inputs:
            if not torch.isfinite(features).all():
                raise ValueError(f'{name}: features contain NaN or Inf (pass check_inputs=False to skip this check)')
            if self.uses_image and not torch.isfinite(image).all():
                raise ValueError(f'{name}: image contains NaN or Inf (pass check_inputs=False to skip this check)')

    # ------------------------------------------------------------------ calls
    def upsample(self, image: Optional[torch.Tensor], features: torch.Tensor,
                 output_size: Tuple[int, int]) -> torch.Tensor:
        """``(B, 3, H_img, W_img), (B, C, h, w), (H, W) -> (B, C, H, W)``. Implemented by each method, or taken
        from its :meth:`upsample_many` (one map)."""
        if type(self).upsample_many is BaseUpsampler.upsample_many:
            raise NotImplementedError(f'{type(self).__name__} implements neither upsample() nor upsample_many()')
        return self.upsample_many(image, [features], [output_size])[0]

    def upsample_many(self, image: Optional[torch.Tensor], features: Sequence[torch.Tensor],
                      output_sizes: Sequence[Tuple[int, int]]) -> List[torch.Tensor]:
        """Several maps guided by one image; ``outputs[i] == upsample(image, features[i], output_sizes[i])``.

        Methods whose image encoding is costly (JAFAR, AnyUp, NAF, LoftUp) override this to encode the image
        once for every map and output size; the default loops over :meth:`upsample`.
        """
        return [self.upsample(image, f, s) for f, s in zip(features, output_sizes)]

    def forward(self, image, features: Optional[torch.Tensor] = None,
                output_size: Optional[SizeLike] = None):
        if features is None and isinstance(image, GuidedFeatures):
            return self.forward_neck(image)
        if features is None:
            raise TypeError(f'{type(self).__name__}.forward(image, features, output_size): features are missing '
                            '(as a neck it expects the GuidedFeatures of an mmjafar backbone; for other '
                            'backbones use the GuidedEncoderDecoder segmentor)')
        self.validate(image, features)
        return self.upsample(image, features, self.resolve_output_size(image, features, output_size))

    def forward_many(self, image: Optional[torch.Tensor], features: Sequence[torch.Tensor],
                     output_sizes: Sequence[Optional[SizeLike]]) -> List[torch.Tensor]:
        """``[self(image, f, s) for f, s in zip(features, output_sizes)]`` with the image encoded once.

        This is the call of multi-level necks: whatever depends only on the guidance image (JAFAR's, AnyUp's
        and NAF's full-resolution encoders, LoftUp's image queries) is computed once per forward, whatever the
        number of maps and output sizes.
        """
        if len(features) != len(output_sizes):
            raise ValueError(f'{type(self).__name__}.forward_many: {len(features)} feature maps but '
                             f'{len(output_sizes)} output sizes')
        for feats in features:
            self.validate(image, feats)
        sizes = [self.resolve_output_size(image, f, s) for f, s in zip(features, output_sizes)]
        return self.upsample_many(image, list(features), sizes)

    def forward_neck(self, inputs: GuidedFeatures) -> GuidedFeatures:
        outs = self.forward_many(inputs.image, list(inputs), [None] * len(inputs))
        return GuidedFeatures(outs, image=inputs.image)

    # ------------------------------------------------------------------ checkpoints
    def _adapt_checkpoint(self, state_dict: Dict, prefix: str, *args) -> None:
        """Pre-hook of ``load_state_dict``: accept the official file layouts in place.

        Unwraps weights nested under one of :attr:`checkpoint_wrapper_keys` (e.g. ``{'jafar': {...}}``), strips
        a DDP ``module.`` prefix, drops keys of modules this class does not have
        (:attr:`checkpoint_ignored_prefixes`, logged), then lets :meth:`check_checkpoint` reject a checkpoint of
        another method or feature dimension with a one-line explanation.
        """
        for wrapper in self.checkpoint_wrapper_keys:
            nested = state_dict.pop(prefix + wrapper, None)
            if isinstance(nested, dict):
                for key, value in nested.items():
                    state_dict[prefix + key] = value
                # what sat beside the weights in a training file (optimizer state, step counters) is not ours
                extra = [k for k, v in state_dict.items() if k.startswith(prefix) and not torch.is_tensor(v)]
                for key in extra:
                    del state_dict[key]
                if extra:
                    print_log(f'{type(self).__name__}: ignored non-weight entries of the checkpoint file: '
                              f'{sorted(k[len(prefix):] for k in extra)}', logger='current')
        ours = [k for k in state_dict if k.startswith(prefix)]
        for key in ours:
            if key.startswith(prefix + 'module.'):
                state_dict[prefix + key[len(prefix) + 7:]] = state_dict.pop(key)
        ignored = [k for k in state_dict if k.startswith(prefix)
                   and k[len(prefix):].startswith(self.checkpoint_ignored_prefixes or ('\0', ))]
        for key in ignored:
            del state_dict[key]
        if ignored:
            print_log(f'{type(self).__name__}: ignored {len(ignored)} checkpoint keys of modules the forward pass '
                      f'never uses: {sorted({k[len(prefix):].split(".")[0] for k in ignored})}', logger='current')
        local = {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}
        self.check_checkpoint(local)

    def check_checkpoint(self, state_dict: Dict[str, torch.Tensor]) -> None:
        """Raise a clear error if ``state_dict`` (keys relative to this module) is for another model."""
        own = self.state_dict()
        if state_dict and own and not set(state_dict) & set(own):
            raise ValueError(f'{type(self).__name__}: the checkpoint shares no key with this module (it has keys '
                             f'like {sorted(state_dict)[:3]}); is it a checkpoint of another method?')
