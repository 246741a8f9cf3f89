"""Everything ``tools/pretrain_jafar.py`` does besides parsing arguments, so tests reach it through the library."""
import argparse
import os
import os.path as osp
from typing import Optional, Union

import torch
import torch.distributed as dist
from mmengine.config import Config, DictAction
from mmengine.logging import print_log

LAUNCHERS = ('none', 'pytorch', 'slurm')


def setup_pretrain_cfg(cfg: Config, work_dir: Optional[str] = None, resume: Union[bool, str, None] = False,
                       amp: Optional[bool] = None, launcher: str = 'none',
                       config_path: Optional[str] = None) -> Config:
    """Complete a pretraining config for this machine (in place; also returned).

    * ``work_dir``: the argument, else ``cfg.work_dir``, else ``./work_dirs/<config name>``.
    * ``resume``: True resumes from the last checkpoint in ``work_dir`` (if any), a path from that checkpoint.
    * ``amp``: True switches to ``AmpOptimWrapper(dtype='bfloat16')`` (needs CUDA); None (default) does so when
      CUDA is available and ``cfg.auto_amp`` is not False; False keeps float32.
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
        name = osp.splitext(osp.basename(config_path or cfg.filename or 'pretrain'))[0]
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
        print_log('pretraining with bfloat16 autocast (AmpOptimWrapper)', logger='current')
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
                           'TRAIN_SCRIPT=tools/pretrain_jafar.py bash tools/dist_train.sh CONFIG GPUS')
    dist.init_process_group(backend='gloo')


def runner_arg_parser(description: str) -> argparse.ArgumentParser:
    """The arguments every Runner-based tool shares: config, --work-dir, --resume, --cfg-options, --launcher."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument('config', help='config file')
    parser.add_argument('--work-dir', help='folder of logs and checkpoints (default ./work_dirs/<config name>)')
    parser.add_argument('--resume', nargs='?', const='auto', default=None, metavar='CHECKPOINT',
                        help='resume from CHECKPOINT, or from the last checkpoint in the work dir if none is given')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config entries, e.g. train_dataloader.dataset.data_root=/data/images')
    parser.add_argument('--launcher', choices=list(LAUNCHERS), default='none')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    return parser


def cfg_from_args(args: argparse.Namespace, amp: Optional[bool] = None) -> Config:
    """Load ``args.config``, apply ``--cfg-options`` and :func:`setup_pretrain_cfg` with the parsed arguments."""
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    return setup_pretrain_cfg(cfg, work_dir=args.work_dir, resume=args.resume, amp=amp, launcher=args.launcher,
                              config_path=args.config)
