"""Task-agnostic pretraining of JAFAR (or another upsampler) on a frozen backbone with mmengine's Runner.

    python tools/pretrain_jafar.py configs/pretrain/jafar_demo.py                 # offline CPU demo (~10 min)
    python tools/pretrain_jafar.py configs/pretrain/jafar_vit-s14-dinov2_1xb4-100k_imagenet-448.py \
        --cfg-options train_dataloader.dataset.data_root=/data/imagenet/train
    python tools/pretrain_jafar.py CONFIG --resume                                 # continue after a crash
    TRAIN_SCRIPT=tools/pretrain_jafar.py bash tools/dist_train.sh CONFIG 8         # multi-GPU (torchrun)
"""
import argparse
import os

from mmengine.config import Config, DictAction
from mmengine.runner import Runner

from mmjafar.engine import init_cpu_distributed, runner_checkpoint_loading, setup_pretrain_cfg


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Pretrain a feature upsampler on a frozen backbone')
    parser.add_argument('config', help='pretraining config file')
    parser.add_argument('--work-dir', help='folder of logs, checkpoints and the exported weights')
    parser.add_argument('--resume', nargs='?', const='auto', default=None, metavar='CHECKPOINT',
                        help='resume from CHECKPOINT, or from the last checkpoint in the work dir if none is given')
    amp = parser.add_mutually_exclusive_group()
    amp.add_argument('--amp', dest='amp', action='store_true', default=None,
                     help='bfloat16 autocast (CUDA only; the default whenever CUDA is available)')
    amp.add_argument('--no-amp', dest='amp', action='store_false', help='float32 even on GPU')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config entries, e.g. train_dataloader.dataset.data_root=/data/images')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm'], default='none')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def main() -> None:
    args = parse_args()
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    setup_pretrain_cfg(cfg, work_dir=args.work_dir, resume=args.resume, amp=args.amp, launcher=args.launcher,
                       config_path=args.config)
    init_cpu_distributed(cfg)
    runner = Runner.from_cfg(cfg)
    with runner_checkpoint_loading():
        runner.train()


if __name__ == '__main__':
    main()
