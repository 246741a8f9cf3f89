"""Command-line arguments shared by several tools; not a tool itself.

The tools import it as a sibling module (Python puts the folder of the script it runs first on the import path);
everything besides argument parsing lives in the library: :mod:`mmjafar.engine.runner` for the Runner tools
(``train.py``, ``test.py``, ``pretrain_jafar.py``), :mod:`mmjafar.models.upsamplers.builder` for the tools that
compare upsamplers (``eval_cam.py``, ``visualize_features.py``).
"""
import argparse
import os
from typing import Dict, Optional, Sequence

import torch
from mmengine.config import Config, DictAction

from mmjafar.engine import LAUNCHERS, load_config, run_train, setup_runner_cfg
from mmjafar.models.upsamplers.builder import build_upsamplers


# ---------------------------------------------------------------------------------------------------- Runner tools
def runner_parser(description: str, usage: Optional[str] = None) -> argparse.ArgumentParser:
    """A parser with what every Runner tool takes: config, --work-dir, --cfg-options, --launcher, --local-rank.

    ``usage``: examples shown after the options (the tool's docstring).
    """
    parser = argparse.ArgumentParser(description=description, epilog=usage,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', help='config file, or a packaged config name such as mmjafar::pretrain/jafar_demo.py')
    parser.add_argument('--work-dir', help='folder of logs and checkpoints (default ./work_dirs/<config name>)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config entries, e.g. train_dataloader.batch_size=2 '
                        'model.neck.init_cfg.checkpoint=/path/jafar.pth')
    parser.add_argument('--launcher', choices=list(LAUNCHERS), default='none',
                        help='job launcher of a distributed run (tools/dist_train.sh passes pytorch)')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0, help=argparse.SUPPRESS)
    return parser


def add_train_arguments(parser: argparse.ArgumentParser, auto_amp: bool = False) -> None:
    """``--resume [CHECKPOINT]`` and ``--amp``/``--no-amp``; without either, AMP is off, or with ``auto_amp`` on
    whenever CUDA is available (see :func:`mmjafar.engine.setup_runner_cfg`)."""
    parser.add_argument('--resume', nargs='?', const='auto', default=None, metavar='CHECKPOINT',
                        help='resume from CHECKPOINT, or from the last checkpoint in the work dir if none is given')
    amp = parser.add_mutually_exclusive_group()
    when = '; the default whenever CUDA is available' if auto_amp else ''
    amp.add_argument('--amp', action='store_true', default=None if auto_amp else False,
                     help=f'bfloat16 autocast (CUDA only{when})')
    amp.add_argument('--no-amp', dest='amp', action='store_false', help='float32 even on GPU')


def parse_runner_args(parser: argparse.ArgumentParser, argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse ``argv`` (default: the command line); ``--local-rank`` of older launchers becomes ``LOCAL_RANK``."""
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def runner_cfg(args: argparse.Namespace) -> Config:
    """The config of the parsed arguments, completed by :func:`mmjafar.engine.setup_runner_cfg`."""
    return setup_runner_cfg(load_config(args.config, args.cfg_options), work_dir=args.work_dir,
                            resume=getattr(args, 'resume', None), amp=getattr(args, 'amp', False),
                            launcher=args.launcher)


def train_main(description: str, usage: str, auto_amp: bool = False, argv: Optional[Sequence[str]] = None) -> None:
    """A training tool: parse the Runner and training arguments, then :func:`mmjafar.engine.run_train`."""
    parser = runner_parser(description, usage)
    add_train_arguments(parser, auto_amp)
    run_train(runner_cfg(parse_runner_args(parser, argv)))


# ---------------------------------------------------------------------------------------- tools comparing upsamplers
def add_timm_model_arguments(parser: argparse.ArgumentParser, flag: str, default: str, what: str) -> None:
    """``--<flag> NAME``, ``--<flag>-checkpoint FILE`` and ``--random-init``: a timm model and where its weights
    come from (in the order of :func:`mmjafar.models.backbones.timm_weights.choose_weights`)."""
    parser.add_argument(f'--{flag}', default=default, help=f'timm {what}')
    parser.add_argument(f'--{flag}-checkpoint', default=None, help=f'local weights of the {what}')
    parser.add_argument('--random-init', action='store_true',
                        help=f'allow a random {what} when no weights exist (testing only)')


def add_upsampler_arguments(parser: argparse.ArgumentParser, default: str = 'bilinear,jafar') -> None:
    """--upsamplers, --checkpoint NAME=PATH (repeatable) and --upsampler-args JSON."""
    parser.add_argument('--upsamplers', default=default, help='comma-separated registered upsamplers')
    parser.add_argument('--checkpoint', action='append', default=[],
                        help='NAME=PATH weights of an upsampler (repeatable; a bare PATH if only one is learned)')
    parser.add_argument('--upsampler-args', default='{}',
                        help='JSON {"NAME": {constructor args}}, e.g. \'{"jafar": {"qk_dim": 128}}\'')


def upsamplers_from_args(args: argparse.Namespace, channels: int,
                         device: Optional[torch.device] = None) -> Dict[str, torch.nn.Module]:
    """Registry name -> frozen upsampler for the options of :func:`add_upsampler_arguments`."""
    return build_upsamplers(args.upsamplers, channels, args.checkpoint, args.upsampler_args, device)
