"""Build registered upsamplers by name for a given feature width: the one builder of tools, benchmarks and models.

Every upsampler declares the constructor argument that carries the feature width (``channels_arg``, e.g.
``'v_dim'`` for JAFAR, ``'in_channels'`` for CARAFE, none for interpolation), so a name and a channel count are
enough to build one; names are matched case-insensitively ('jafar' -> 'JAFAR').

Example:
    >>> from mmjafar.models.upsamplers.builder import build_upsampler, resolve_upsampler_name
    >>> resolve_upsampler_name('bilinear')
    'Bilinear'
    >>> type(build_upsampler(dict(type='jafar', qk_dim=32), channels=8)).__name__
    'JAFAR'
"""
import inspect
import json
from typing import Dict, List, Optional, Sequence, Union

import torch
from mmengine.logging import print_log
from mmengine.runner.checkpoint import load_checkpoint

from mmjafar.registry import MODELS
from ..layers.freezing import freeze
from .base import BaseUpsampler

#: upsamplers without weights (a checkpoint given without ``NAME=`` belongs to the one learned upsampler)
PARAMETER_FREE = ('Bilinear', 'Bicubic', 'Nearest')


def registered_upsamplers() -> List[str]:
    """Sorted registry names of every :class:`BaseUpsampler` in mmjafar's registry."""
    return sorted(name for name, cls in MODELS.module_dict.items()
                  if inspect.isclass(cls) and issubclass(cls, BaseUpsampler))


def resolve_upsampler_name(name: str) -> str:
    """Registry name of ``name`` ('jafar' -> 'JAFAR', 'bilinear' -> 'Bilinear'); the error lists the choices."""
    names = registered_upsamplers()
    lookup = {n.lower(): n for n in names}
    key = name.strip().lower()
    if key not in lookup:
        raise KeyError(f'unknown upsampler {name!r}; registered upsamplers: {", ".join(names)}')
    return lookup[key]


def build_upsampler(cfg: Union[str, Dict], channels: int, **kwargs) -> BaseUpsampler:
    """Build the upsampler ``cfg`` (a name, or a dict with ``type`` and constructor arguments) for
    ``channels``-channel features; ``kwargs`` are further constructor arguments. The width argument
    (``channels_arg``) is filled in unless given."""
    args = dict(type=cfg) if isinstance(cfg, str) else dict(cfg)
    args.update(kwargs)
    cls = MODELS.get(resolve_upsampler_name(args.pop('type')))
    arg = getattr(cls, 'channels_arg', None)
    if arg is not None:
        args.setdefault(arg, channels)
    return cls(**args)


def build_frozen_upsampler(cfg: Union[str, Dict], channels: int, checkpoint: Optional[str] = None,
                           device: Optional[Union[str, torch.device]] = None) -> BaseUpsampler:
    """:func:`build_upsampler`, then load ``checkpoint`` (strict), freeze, mark initialised and switch to eval.

    Official checkpoint layouts load as the upsampler's own loading hook accepts them (e.g. JAFAR's
    ``{'jafar': ...}`` training files). Without a checkpoint, a learned upsampler keeps random weights (warned).
    """
    upsampler = build_upsampler(cfg, channels)
    if checkpoint is not None:
        load_checkpoint(upsampler, checkpoint, map_location='cpu', strict=True)
    elif any(True for _ in upsampler.parameters()):
        print_log(f'{type(upsampler).__name__}: no checkpoint given, its weights are RANDOM', logger='current',
                  level=30)
    freeze(upsampler)
    upsampler.is_init = True  # a Runner's init_weights must not re-initialise it
    if device is not None:
        upsampler = upsampler.to(device)
    return upsampler.eval()


def pair_checkpoints(names: Sequence[str], checkpoints: Optional[Sequence[str]]) -> List[Optional[str]]:
    """Checkpoint of each of ``names`` from ``NAME=PATH`` entries (or one bare path for a single learned
    upsampler); None where none is given."""
    out: Dict[str, str] = {}
    for item in checkpoints or ():
        if '=' in item:
            key, path = item.split('=', 1)
            out[resolve_upsampler_name(key)] = path
        else:
            learned = [n for n in names if resolve_upsampler_name(n) not in PARAMETER_FREE]
            if len(learned) != 1:
                raise ValueError(f'checkpoint {item!r} without NAME= is ambiguous for upsamplers {list(names)}; '
                                 'write NAME=PATH, e.g. jafar=/path/jafar.pth')
            out[resolve_upsampler_name(learned[0])] = item
    unknown = set(out) - {resolve_upsampler_name(n) for n in names}
    if unknown:
        raise ValueError(f'checkpoints given for {sorted(unknown)}, which are not among the upsamplers {list(names)}')
    return [out.get(resolve_upsampler_name(n)) for n in names]


def build_upsamplers(names: Union[str, Sequence[str]], channels: int, checkpoints: Optional[Sequence[str]] = None,
                     upsampler_args: Union[str, Dict, None] = None,
                     device: Optional[Union[str, torch.device]] = None) -> Dict[str, BaseUpsampler]:
    """Registry name -> frozen upsampler, for several upsamplers compared side by side.

    Args:
        names: upsampler names, as a list or comma-separated ('bilinear,jafar').
        channels: feature width.
        checkpoints: ``NAME=PATH`` entries (a bare ``PATH`` when only one upsampler is learned).
        upsampler_args: ``{name: {constructor arguments}}``, or that mapping as JSON text.
        device: where the upsamplers go (default: stay on the CPU).
    """
    if isinstance(names, str):
        names = [n.strip() for n in names.split(',') if n.strip()]
    if not names:
        raise ValueError('no upsampler named; name at least one registered upsampler, e.g. bilinear,jafar')
    if isinstance(upsampler_args, str):
        upsampler_args = json.loads(upsampler_args)
    extra = {resolve_upsampler_name(k): v for k, v in dict(upsampler_args or {}).items()}
    built = {}
    for name, checkpoint in zip(names, pair_checkpoints(names, checkpoints)):
        key = resolve_upsampler_name(name)
        built[key] = build_frozen_upsampler(dict(extra.get(key, {}), type=key), channels, checkpoint, device)
    return built
