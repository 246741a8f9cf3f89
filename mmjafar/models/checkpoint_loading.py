"""Strict ``init_cfg=dict(type='Pretrained', ...)`` loading with one-line errors (torch + mmengine only).

mmengine's ``PretrainedInit`` loads with ``strict=False``: a checkpoint that lacks half of a module's weights
loads with a warning in the log and leaves them random. Modules that mix in :class:`StrictPretrainedMixin`
(every upsampler and neck of mmjafar) take over their ``Pretrained`` entry instead and load it strictly, after
their own checkpoint-layout adaptations (``load_state_dict`` pre-hooks). A config opts out explicitly with
``init_cfg=dict(type='Pretrained', checkpoint=..., strict=False)``; the missing and unexpected keys are then
logged.
"""
import builtins
import contextlib
import os
import pickle
import re
import zipfile
from collections import OrderedDict
from typing import Dict, Iterator, List, Optional, Sequence

import numpy as np
import torch
from mmengine.logging import HistoryBuffer, print_log
from mmengine.model.weight_init import PretrainedInit, update_init_info
from mmengine.optim import scheduler as mmengine_schedulers
from mmengine.optim.scheduler.param_scheduler import _ParamScheduler


def runner_checkpoint_globals() -> List[object]:
    """The non-tensor types a Runner checkpoint holds besides tensors: the message hub's ``HistoryBuffer`` (and
    the ``getattr`` it pickles its statistics with), numpy arrays, scalars and dtypes, and mmengine's parameter
    scheduler classes (``OneCycleParamScheduler``'s state holds its annealing function as
    ``getattr(OneCycleParamScheduler, '_annealing_linear')``)."""
    dtypes = [getattr(np.dtypes, name) for name in dir(np.dtypes) if name.endswith('DType')]
    schedulers = [cls for cls in vars(mmengine_schedulers).values()
                  if isinstance(cls, type) and issubclass(cls, _ParamScheduler)]
    return [HistoryBuffer, builtins.getattr, np.dtype, np.ndarray, np.core.multiarray._reconstruct,
            np.core.multiarray.scalar] + dtypes + schedulers


@contextlib.contextmanager
def runner_checkpoint_loading() -> Iterator[None]:
    """Allow exactly the types of :func:`runner_checkpoint_globals` in ``torch.load`` for the block.

    mmengine 0.10.7 loads ``--resume`` checkpoints with a bare ``torch.load``; since torch 2.6 that refuses the
    message hub and resuming fails with an ``UnpicklingError``. Wrap ``runner.train()`` in this context (as
    ``tools/pretrain_jafar.py`` does) instead of turning weights-only loading off.
    """
    with torch.serialization.safe_globals(runner_checkpoint_globals()):
        yield


def read_checkpoint(path: str, map_location='cpu') -> object:
    """``torch.load`` a local checkpoint file with weights-only unpickling; any failure is one line naming the file.

    Runner checkpoints (message hub, scheduler states) load too. Raises ``FileNotFoundError`` for a missing file
    and ``ValueError`` for a file that is empty, truncated, not a PyTorch file, or holds arbitrary Python objects.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f'checkpoint file {path!r} does not exist; check the checkpoint path of the config')
    if os.path.getsize(path) == 0:
        raise ValueError(f'checkpoint file {path!r} is empty (0 bytes); download or export it again')
    if path.endswith('.safetensors'):
        return _read_safetensors(path, map_location)
    try:
        with runner_checkpoint_loading():
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        found = re.search(r'Unsupported global: GLOBAL ([\w.]+)', str(err))
        if found:
            raise ValueError(f'checkpoint file {path!r} holds a pickled Python object ({found.group(1)}), not only '
                             'weights; save the weights with torch.save(model.state_dict(), path) and load '
                             'that') from None
        reason = re.search(r'WeightsUnpickler error:\s*(.+?)\s*(\n|$)', str(err))
        reason = reason.group(1) if reason else ('' if 'weights_only' in str(err) else _first_line(err))
        raise ValueError(f'checkpoint file {path!r} is not a PyTorch checkpoint (unpickling failed'
                         f'{": " + reason if reason else ""}); point the config at a .pth/.pt/.ckpt/.bin file of '
                         'weights') from None
    except (EOFError, zipfile.BadZipFile) as err:
        raise ValueError(f'checkpoint file {path!r} is truncated ({_first_line(err) or type(err).__name__}); '
                         'download or export it again') from None
    except (RuntimeError, OSError) as err:  # zip reader errors, short reads of a cut-off file
        raise ValueError(f'checkpoint file {path!r} is truncated or corrupt ({_first_line(err)}); download or '
                         'export it again') from None


def _read_safetensors(path: str, map_location) -> Dict[str, torch.Tensor]:
    try:
        from safetensors.torch import load_file
    except ImportError:
        raise ImportError(f'reading {path!r} needs the safetensors package (pip install safetensors)') from None
    device = map_location if isinstance(map_location, (str, torch.device)) else 'cpu'
    try:
        return load_file(path, device=str(device))
    except Exception as err:  # safetensors raises its own SafetensorError for cut or foreign files
        raise ValueError(f'checkpoint file {path!r} is not a readable .safetensors file ({_first_line(err)}); '
                         'download it again') from None


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0].strip() if text else ''


def checkpoint_state_dict(checkpoint: object, path: str, prefix: Optional[str] = None) -> Dict[str, object]:
    """The weights of a loaded checkpoint, as mmengine's ``load_checkpoint`` finds them.

    A dict's ``state_dict`` entry if it has one, else the dict itself; a DDP ``module.`` prefix is stripped;
    with ``prefix`` (e.g. ``'upsampler.'``) only the keys under it, with the prefix removed.
    """
    if not isinstance(checkpoint, dict):
        raise ValueError(f'checkpoint file {path!r} holds a {type(checkpoint).__name__}, not a dict of weights')
    nested = checkpoint.get('state_dict')
    state_dict = nested if isinstance(nested, dict) else checkpoint
    state_dict = OrderedDict((k[7:] if isinstance(k, str) and k.startswith('module.') else k, v)
                             for k, v in state_dict.items())
    if prefix:
        prefix = prefix if prefix.endswith('.') else prefix + '.'
        state_dict = OrderedDict((k[len(prefix):], v) for k, v in state_dict.items()
                                 if isinstance(k, str) and k.startswith(prefix))
        if not state_dict:
            raise ValueError(f'checkpoint file {path!r} has no key starting with prefix {prefix!r}; check '
                             'init_cfg.prefix')
    if not any(torch.is_tensor(v) or isinstance(v, dict) for v in state_dict.values()):
        raise ValueError(f'checkpoint file {path!r} holds no tensors (keys: {sorted(map(str, state_dict))[:5]}); '
                         'is it a checkpoint?')
    return state_dict


def summarize_keys(keys: Sequence[str], limit: int = 8) -> str:
    """One-line summary grouped by top-level module: ``12 keys: cross_decode.* (10), norm.weight, sft_key.* (2)``."""
    groups: Dict[str, List[str]] = OrderedDict()
    for key in sorted(keys):
        groups.setdefault(key.split('.', 1)[0], []).append(key)
    parts = [members[0] if len(members) == 1 else f'{head}.* ({len(members)})' for head, members in groups.items()]
    more = f' and {len(parts) - limit} more modules' if len(parts) > limit else ''
    return f'{len(keys)} keys: ' + ', '.join(parts[:limit]) + more


def load_pretrained(module: torch.nn.Module, checkpoint: str, prefix: Optional[str] = None, strict: bool = True,
                    map_location='cpu') -> None:
    """Load ``checkpoint`` into ``module`` through its ``load_state_dict`` (and so its layout adaptations).

    With ``strict`` (the default) any key the module misses or does not know after those adaptations is a
    one-line ``ValueError``; with ``strict=False`` they are logged as a warning. Shape mismatches and the
    modules' own checks (another method, another feature dimension) are one-line errors naming the file.
    """
    name = type(module).__name__
    state_dict = checkpoint_state_dict(read_checkpoint(checkpoint, map_location), checkpoint, prefix)
    try:
        result = module.load_state_dict(state_dict, strict=False)
    except ValueError as err:  # the module's own checks, e.g. another method or feature dimension
        text = str(err)[len(name) + 2:] if str(err).startswith(f'{name}: ') else str(err)
        raise ValueError(f'{name}: checkpoint {checkpoint!r}: {text}') from None
    except RuntimeError as err:  # size mismatches (torch lists one per line)
        lines = [ln.strip() for ln in str(err).splitlines()[1:] if ln.strip()]
        raise ValueError(f'{name}: checkpoint {checkpoint!r} does not fit the module: {"; ".join(lines[:3])}'
                         f'{f" (and {len(lines) - 3} more)" if len(lines) > 3 else ""}; build the module with '
                         'the arguments the checkpoint was trained with') from None
    missing, unexpected = list(result.missing_keys), list(result.unexpected_keys)
    if not missing and not unexpected:
        print_log(f'{name}: loaded {checkpoint}', logger='current')
        return
    problems = '; '.join(f'{what} {summarize_keys(keys)}' for what, keys in
                         (('missing', missing), ('unexpected', unexpected)) if keys)
    if strict:
        raise ValueError(f'{name}: checkpoint {checkpoint!r} does not match the module ({problems}); use the '
                         f'checkpoint made for this module and these arguments, or load it partially with '
                         f"init_cfg=dict(type='Pretrained', checkpoint=..., strict=False)")
    print_log(f'{name}: loaded {checkpoint} non-strictly ({problems})', logger='current', level=30)


def _is_pretrained(cfg) -> bool:
    return isinstance(cfg, dict) and (cfg.get('type') == 'Pretrained' or cfg.get('type') is PretrainedInit)


class StrictPretrainedMixin:
    """Load the ``Pretrained`` entry of ``init_cfg`` strictly (see the module docstring); mix in before
    ``BaseModule``.

    ``init_cfg=dict(type='Pretrained', checkpoint=path, prefix=None, map_location='cpu', strict=True)``; other
    entries of an ``init_cfg`` list run as mmengine runs them, before the checkpoint is loaded.
    """

    def _pretrained_cfg(self) -> Optional[Dict]:
        """The ``Pretrained`` entry of ``init_cfg`` (validated, without ``type``), or None."""
        init_cfg = getattr(self, 'init_cfg', None)  # plain nn.Module bases (mmseg's MultiLevelNeck) have none
        cfgs = init_cfg if isinstance(init_cfg, (list, tuple)) else [init_cfg]
        pretrained = [c for c in cfgs if _is_pretrained(c)]
        if not pretrained:
            return None
        if len(pretrained) > 1:
            raise ValueError(f'{type(self).__name__}: init_cfg has {len(pretrained)} Pretrained entries; give one')
        cfg = dict(pretrained[0])
        cfg.pop('type')
        unknown = set(cfg) - {'checkpoint', 'prefix', 'map_location', 'strict'}
        if unknown or 'checkpoint' not in cfg:
            raise ValueError(f"{type(self).__name__}: init_cfg=dict(type='Pretrained', ...) takes checkpoint, "
                             f'prefix, map_location and strict; got {sorted(cfg)}')
        return cfg

    def load_init_cfg_checkpoint(self) -> None:
        """Load the ``Pretrained`` entry of ``init_cfg`` strictly, if there is one. For subclasses whose own
        ``init_weights`` does not reach this mixin's (call it at its end)."""
        cfg = self._pretrained_cfg()
        if cfg is not None:
            load_pretrained(self, cfg['checkpoint'], prefix=cfg.get('prefix'), strict=cfg.get('strict', True),
                            map_location=cfg.get('map_location', 'cpu'))

    def init_weights(self) -> None:
        cfg = self._pretrained_cfg()
        if cfg is None or self.is_init:
            super().init_weights()
            return
        cfgs = self.init_cfg if isinstance(self.init_cfg, (list, tuple)) else [self.init_cfg]
        others = [c for c in cfgs if c is not None and not _is_pretrained(c)]
        saved = self.init_cfg
        self.init_cfg = others or None
        try:
            super().init_weights()
        finally:
            self.init_cfg = saved
        load_pretrained(self, cfg['checkpoint'], prefix=cfg.get('prefix'), strict=cfg.get('strict', True),
                        map_location=cfg.get('map_location', 'cpu'))
        if hasattr(self, '_params_init_info'):
            update_init_info(self, init_info=f'loaded from {cfg["checkpoint"]}')
