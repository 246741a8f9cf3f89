"""Build registered upsamplers by (case-insensitive) name for the evaluation and visualisation tools."""
from typing import Dict, List, Optional, Sequence

import torch

from mmjafar.utils.benchmark import build_upsampler, registered_upsamplers


def resolve_upsampler_name(name: str) -> str:
    """Registry name of ``name`` ('jafar' -> 'JAFAR', 'bilinear' -> 'Bilinear'); error lists the choices."""
    names = registered_upsamplers()
    lookup = {n.lower(): n for n in names}
    key = name.strip().lower()
    if key not in lookup:
        raise KeyError(f'unknown upsampler {name!r}; registered upsamplers: {", ".join(names)}')
    return lookup[key]


def build_named_upsampler(name: str, channels: int, checkpoint: Optional[str] = None,
                          cfg: Optional[Dict] = None, device: Optional[torch.device] = None) -> torch.nn.Module:
    """Build the upsampler ``name`` for ``channels``-channel features, load ``checkpoint`` (strict), eval mode.

    ``cfg`` holds extra constructor arguments (e.g. ``dict(qk_dim=128)``). Official checkpoint layouts load as
    the upsampler's own loading hook accepts them (e.g. JAFAR's ``{'jafar': ...}`` training files).
    """
    upsampler = build_upsampler(resolve_upsampler_name(name), channels, **dict(cfg or {}))
    if checkpoint is not None:
        from mmengine.runner import load_checkpoint
        load_checkpoint(upsampler, checkpoint, map_location='cpu', strict=True)
    elif any(True for _ in upsampler.parameters()):
        from mmengine.logging import print_log
        print_log(f'{type(upsampler).__name__}: no checkpoint given, its weights are RANDOM (pass --checkpoint '
                  'for a trained upsampler)', logger='current', level=30)
    for p in upsampler.parameters():
        p.requires_grad_(False)
    return upsampler.to(device or 'cpu').eval()


def parse_name_list(text: str) -> List[str]:
    """'bilinear, jafar' -> ['bilinear', 'jafar'] (empty entries dropped)."""
    return [t.strip() for t in text.split(',') if t.strip()]


def pair_checkpoints(names: Sequence[str], checkpoints: Optional[Sequence[str]]) -> List[Optional[str]]:
    """Checkpoints per upsampler from ``NAME=PATH`` entries (or one bare path for a single learned upsampler)."""
    out: Dict[str, str] = {}
    for item in checkpoints or ():
        if '=' in item:
            key, path = item.split('=', 1)
            out[resolve_upsampler_name(key)] = path
        else:
            learned = [n for n in names if resolve_upsampler_name(n) not in ('Bilinear', 'Bicubic', 'Nearest')]
            if len(learned) != 1:
                raise ValueError(f'checkpoint {item!r} without NAME= is ambiguous for upsamplers {list(names)}; '
                                 'write NAME=PATH, e.g. jafar=/path/jafar.pth')
            out[resolve_upsampler_name(learned[0])] = item
    unknown = set(out) - {resolve_upsampler_name(n) for n in names}
    if unknown:
        raise ValueError(f'checkpoints given for {sorted(unknown)}, which are not among the upsamplers {list(names)}')
    return [out.get(resolve_upsampler_name(n)) for n in names]


def add_upsampler_args(parser, default: str = 'bilinear,jafar') -> None:
    """The command-line options shared by the tools that compare several upsamplers."""
    parser.add_argument('--upsamplers', default=default, help='comma-separated registered upsamplers')
    parser.add_argument('--checkpoint', action='append', default=[],
                        help='NAME=PATH weights of an upsampler (repeatable; a bare PATH if only one is learned)')
    parser.add_argument('--upsampler-args', default='{}',
                        help='JSON {"NAME": {constructor args}}, e.g. \'{"jafar": {"qk_dim": 128}}\'')


def build_upsamplers_from_args(args, channels: int, device: Optional[torch.device] = None) -> Dict[str, torch.nn.Module]:
    """Registry class name -> built, loaded upsampler for the options of :func:`add_upsampler_args`."""
    import json
    names = parse_name_list(args.upsamplers)
    if not names:
        raise ValueError('--upsamplers is empty; name at least one registered upsampler, e.g. bilinear,jafar')
    extra = {k.lower(): v for k, v in json.loads(args.upsampler_args).items()}
    built = {}
    for name, ckpt in zip(names, pair_checkpoints(names, args.checkpoint)):
        built[resolve_upsampler_name(name)] = build_named_upsampler(name, channels, ckpt, extra.get(name.lower()),
                                                                    device)
    return built
