"""Where the weights of a timm backbone come from (local file, Hugging Face cache or hub, or explicit random init)
and how a weights file is read into the model (wrappers unwrapped, prefixes stripped, the family's converter).

The order, documented on :class:`~.timm_vit.TimmBackbone`: ``checkpoint`` if given; else, with ``pretrained``,
timm's weights from the local Hugging Face cache or the hub when it is reachable; else random weights if
``random_init=True`` (with a warning); otherwise a ``RuntimeError`` naming these options.
"""
import os
import pickle
import socket
import sys
import warnings
from typing import Dict, Optional, Tuple

import torch
from mmengine.logging import print_log
from torch import nn

# Keys under which training frameworks nest a state dict, and prefixes they put in front of the ViT's own keys.
_WRAPPER_KEYS = ('state_dict', 'model', 'module', 'teacher', 'student')
_KEY_PREFIXES = ('module.', 'backbone.', 'model.', 'encoder.')


def import_timm():
    """The ``timm`` module, or an ImportError that says how to install it."""
    try:
        import timm
    except ImportError as err:  # pragma: no cover - timm is a runtime requirement
        raise ImportError('the mmjafar timm backbones need timm: pip install timm') from err
    return timm


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the Hugging Face hub answers a TCP connection (False offline or with HF_HUB_OFFLINE=1)."""
    if os.environ.get('HF_HUB_OFFLINE', '0') not in ('0', '', 'false', 'False'):
        return False
    endpoint = os.environ.get('HF_ENDPOINT', 'https://huggingface.co')
    host = endpoint.split('://', 1)[-1].split('/', 1)[0]
    port = 443 if endpoint.startswith('https') else 80
    if ':' in host:
        host, port = host.rsplit(':', 1)[0], int(host.rsplit(':', 1)[1])
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def cached_hub_weights(model_name: str) -> Optional[str]:
    """Path of the model's weights in the local Hugging Face cache, or None."""
    timm = import_timm()
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover
        return None
    cfg = timm.models.get_pretrained_cfg(model_name)
    hub_id = getattr(cfg, 'hf_hub_id', None) if cfg is not None else None
    if not hub_id:
        return None
    repo_id, _, revision = hub_id.partition('@')
    for filename in ('open_clip_model.safetensors', 'model.safetensors', 'pytorch_model.bin'):
        path = try_to_load_from_cache(repo_id, filename, revision=revision or None)
        if isinstance(path, str) and os.path.isfile(path):
            return path
    return None


def read_vit_state_dict(path: str) -> Dict[str, torch.Tensor]:
    """Read a ViT state dict from a timm file (``.safetensors``/``.pth``) or an mmengine checkpoint.

    Wrappers such as ``{'state_dict': ...}`` are unwrapped and prefixes such as ``backbone.model.`` stripped, so a
    checkpoint of a whole mmjafar segmentor or pretraining run works as well as a bare timm state dict.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f'TimmViT: checkpoint file {path!r} does not exist; set checkpoint= to a local '
                                'timm or mmengine .pth/.safetensors file of this model')
    if path.endswith('.safetensors'):
        from safetensors.torch import load_file
        state = load_file(path)
    else:
        try:
            state = torch.load(path, map_location='cpu', weights_only=True)
        except pickle.UnpicklingError:  # training checkpoints also pickle logger / optimizer objects
            print_log(f'TimmViT: {path} holds more than tensors; loading it with full unpickling (only load '
                      'checkpoints you trust)', logger='current', level=30)
            state = torch.load(path, map_location='cpu', weights_only=False)
    unwrapped = True
    while unwrapped and isinstance(state, dict):
        inner = [key for key in _WRAPPER_KEYS if isinstance(state.get(key), dict)]
        unwrapped = bool(inner)
        if inner:
            state = state[inner[0]]
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise ValueError(f'TimmViT: {path!r} holds no state dict of tensors')
    # segmentor checkpoints hold other modules too: keep the backbone's part when there is one
    if any(k.startswith('backbone.') for k in state):
        state = {k[len('backbone.'):]: v for k, v in state.items() if k.startswith('backbone.')}
    changed = True
    while changed:
        changed = False
        for prefix in _KEY_PREFIXES:
            if state and all(k.startswith(prefix) for k in state):
                state = {k[len(prefix):]: v for k, v in state.items()}
                changed = True
    return state


def choose_weights(model_name: str, pretrained: bool, checkpoint: Optional[str], random_init: bool,
                   stacklevel: int = 3) -> Tuple[Optional[str], bool]:
    """``(local file or None, load through timm's hub)`` following the documented order; ``stacklevel`` of the
    random-weights warning (3: the caller of the function that calls this one)."""
    if checkpoint is not None:
        if not os.path.isfile(checkpoint):
            raise FileNotFoundError(f'TimmBackbone({model_name}): checkpoint file {checkpoint!r} does not exist; '
                                    'set checkpoint= to a local timm or mmengine .pth/.safetensors file')
        return checkpoint, False
    if pretrained:
        cached = cached_hub_weights(model_name)
        if cached is not None:
            return cached, False
        if hub_reachable():
            return None, True
        reason = 'pretrained=True but the Hugging Face hub is unreachable and the weights are not cached'
    else:
        reason = 'pretrained=False and no checkpoint was given'
    if random_init:
        warnings.warn(f'TimmBackbone({model_name}): {reason}; using RANDOM weights because random_init=True. '
                      'Features of a random model are meaningless for evaluation.', stacklevel=stacklevel)
        print_log(f'TimmBackbone({model_name}): RANDOM weights ({reason})', logger='current', level=30)
        return None, False
    raise RuntimeError(f'TimmBackbone({model_name}): no weights: {reason}. Either set checkpoint=\'/path/to/'
                       'weights.pth\' (timm or mmengine layout), make the hub reachable (or pre-fill the '
                       'Hugging Face cache, e.g. HF_HOME), or set random_init=True to run with random weights.')


def load_weights_file(model: nn.Module, path: str, owner: str) -> None:
    """Load a weights file into the timm ``model`` (no head), strictly apart from classifier heads; ``owner`` names
    the backbone in messages."""
    state = read_vit_state_dict(path)
    # the family's own converter (original DINOv3 / RADIO / OpenAI layouts -> timm); timm layouts pass through
    convert = getattr(sys.modules.get(type(model).__module__), 'checkpoint_filter_fn', None)
    if convert is not None:
        state = convert(state, model)
    missing, unexpected = model.load_state_dict(state, strict=False)
    # heads are dropped (num_classes=0); anything else missing means the file is for another model
    missing = [k for k in missing if not k.startswith('head.')]
    unexpected = [k for k in unexpected if not k.startswith(('head.', 'fc_norm.', 'mask_token'))]
    if missing or unexpected:
        raise ValueError(f'{owner}: {path!r} does not fit this model: missing '
                         f'{missing[:5]}{"..." if len(missing) > 5 else ""}, unexpected '
                         f'{unexpected[:5]}{"..." if len(unexpected) > 5 else ""}; is it the checkpoint of '
                         'another architecture? Pass the matching model_name.')
    print_log(f'{owner}: loaded weights from {path}', logger='current')
