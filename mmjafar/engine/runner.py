"""The one set-up of mmengine's Runner behind ``tools/train.py``, ``tools/test.py`` and ``tools/pretrain_jafar.py``.

The tools only parse arguments; everything else is here, so tests reach it through the library:

* :func:`load_config`: a config file or ``mmjafar::``/``mmseg::`` name, with ``--cfg-options`` applied;
* :func:`setup_runner_cfg`: work dir, resume, bfloat16 AMP and the launcher (gloo and a CPU DDP wrapper without
  CUDA);
* :func:`build_runner`: the CPU process group of a ``--launcher pytorch`` run, then the Runner (or the config's
  ``runner_type``);
* :func:`run_train` and :func:`run_test`: run it with mmengine checkpoints readable under torch's weights-only loading.

Example:
    >>> import mmjafar
    >>> from mmjafar.engine import load_config, setup_runner_cfg
    >>> cfg = setup_runner_cfg(load_config('mmjafar::pretrain/jafar_demo.py', {'max_iters': 2}), amp=False)
    >>> cfg.work_dir, cfg.launcher
    ('./work_dirs/jafar_demo', 'none')
"""
import json
import os
import os.path as osp
from typing import Dict, Optional, Union

import torch
import torch.distributed as dist
from mmengine.config import Config
from mmengine.dist import is_main_process
from mmengine.logging import print_log
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from .checkpoint import runner_checkpoint_loading

#: values of ``launcher``
LAUNCHERS = ('none', 'pytorch', 'slurm')


def load_config(config: str, cfg_options: Optional[Dict] = None) -> Config:
    """Read ``config`` (a file, or a ``mmjafar::``/``mmseg::`` name) and merge ``cfg_options`` into it."""
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    return cfg


def setup_runner_cfg(cfg: Config, work_dir: Optional[str] = None, resume: Union[bool, str, None] = False,
                     amp: Optional[bool] = False, launcher: str = 'none') -> Config:
    """Complete a Runner config for this machine (in place; also returned).

    * ``work_dir``: the argument, else ``cfg.work_dir``, else ``./work_dirs/<config name>``.
    * ``resume``: True (or ``'auto'``) resumes from the last checkpoint in ``work_dir`` (if any), a path from that
      checkpoint.
    * ``amp``: True switches to ``AmpOptimWrapper(dtype='bfloat16')`` (needs CUDA); False keeps float32; None
      does so when CUDA is available and ``cfg.auto_amp`` is not False (the pretraining default).
    * ``launcher``: 'none', 'pytorch' (torchrun) or 'slurm'. Without CUDA, distributed runs use gloo and a
      CPU DDP wrapper (no ``device_ids``); DDP never needs ``find_unused_parameters`` (unused upsampler
      parameters are frozen).
    """
    if launcher not in LAUNCHERS:
        raise ValueError(f'launcher must be one of {LAUNCHERS}, got {launcher!r}')
    cfg.launcher = launcher
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        name = osp.splitext(osp.basename(cfg.filename or 'run'))[0]
        cfg.work_dir = osp.join('./work_dirs', name)
    if isinstance(resume, str) and resume != 'auto':
        if not osp.isfile(resume):
            raise FileNotFoundError(f'--resume {resume!r}: no such checkpoint file')
        cfg.resume, cfg.load_from = True, resume
    elif resume:
        cfg.resume, cfg.load_from = True, None

    cuda = torch.cuda.is_available()
    if amp is None:
        amp = cuda and cfg.get('auto_amp', True) is not False
    elif amp and not cuda:
        raise ValueError('--amp (bfloat16 autocast) needs a CUDA GPU; none is available here. Run without --amp '
                         '(float32 on CPU).')
    if amp:
        if cfg.optim_wrapper.get('type', 'OptimWrapper') != 'AmpOptimWrapper':
            cfg.optim_wrapper.type = 'AmpOptimWrapper'
            cfg.optim_wrapper.dtype = 'bfloat16'
            cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
        print_log('training with bfloat16 autocast (AmpOptimWrapper)', logger='current')
    if launcher != 'none':
        cfg.find_unused_parameters = False
        if not cuda:
            cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})['backend'] = 'gloo'
            cfg.model_wrapper_cfg = dict(type='MMDistributedDataParallel', device_ids=None, broadcast_buffers=False,
                                         find_unused_parameters=False)
    return cfg


def init_cpu_distributed(cfg: Config) -> None:
    """Start the gloo process group of a CPU ``--launcher pytorch`` run (mmengine's own start-up selects a CUDA
    device, which a CPU-only machine does not have). No-op with CUDA, without a launcher or when started."""
    if cfg.launcher != 'pytorch' or torch.cuda.is_available() or dist.is_initialized():
        return
    missing = [k for k in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT') if k not in os.environ]
    if missing:
        raise RuntimeError(f'--launcher pytorch needs the torchrun environment ({missing} unset); start it with '
                           'bash tools/dist_train.sh CONFIG GPUS')
    dist.init_process_group(backend='gloo')


def build_runner(cfg: Config) -> Runner:
    """The Runner of a config completed by :func:`setup_runner_cfg` (the config's ``runner_type`` if it names one)."""
    init_cpu_distributed(cfg)
    return RUNNERS.build(cfg) if 'runner_type' in cfg else Runner.from_cfg(cfg)


def run_train(cfg: Config) -> Runner:
    """Build the Runner of ``cfg`` and train (resuming reads mmengine checkpoints under weights-only loading)."""
    runner = build_runner(cfg)
    with runner_checkpoint_loading():
        runner.train()
    return runner


def run_test(cfg: Config, checkpoint: str, show_dir: Optional[str] = None, out: Optional[str] = None) -> Dict:
    """Evaluate ``checkpoint`` with the test loop of ``cfg``; returns the metrics.

    ``show_dir``: also draw every prediction, under ``work_dir/<show_dir>`` (configs whose ``default_hooks`` hold a
    ``visualization`` hook, as mmseg's do). ``out``: write the metrics to this JSON file (main process).
    """
    if not osp.isfile(checkpoint):
        raise FileNotFoundError(f'checkpoint {checkpoint!r} does not exist')
    cfg.load_from = checkpoint
    if show_dir:
        vis = cfg.default_hooks.get('visualization')
        if vis is None:
            raise ValueError('--show-dir needs a `visualization` entry in default_hooks (mmseg configs have one)')
        vis.update(draw=True, interval=1)
        cfg.visualizer.save_dir = osp.join(cfg.work_dir, show_dir)
    runner = build_runner(cfg)
    with runner_checkpoint_loading():
        metrics = runner.test()
    if out and is_main_process():
        os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
        with open(out, 'w') as f:
            json.dump({k: float(v) if isinstance(v, (int, float)) else str(v) for k, v in metrics.items()}, f,
                      indent=2)
    return metrics
