"""Train an mmseg / mmdet3d model of an mmjafar config (linear probes, BEV models) with mmengine's Runner.

    python tools/train.py configs/linear_probe/jafar_vit-s14-dinov2_1xb4-20e_ade20k-448x448.py
    python tools/train.py CONFIG --work-dir work_dirs/x --cfg-options train_dataloader.batch_size=2
    python tools/train.py CONFIG --resume                     # continue from the last checkpoint of the work dir
    bash tools/dist_train.sh CONFIG 8 [--amp]                 # multi-GPU (torchrun; gloo on CPU)
"""
import argparse
import os

from mmengine.config import Config, DictAction
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from mmjafar.engine import init_cpu_distributed, runner_checkpoint_loading, setup_pretrain_cfg


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train a model of an mmjafar config')
    parser.add_argument('config', help='config file')
    parser.add_argument('--work-dir', help='folder of logs and checkpoints (default ./work_dirs/<config name>)')
    parser.add_argument('--resume', nargs='?', const='auto', default=None, metavar='CHECKPOINT',
                        help='resume from CHECKPOINT, or from the last checkpoint in the work dir if none is given')
    parser.add_argument('--amp', action='store_true', help='bfloat16 automatic mixed precision (CUDA only)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config entries, e.g. model.neck.init_cfg.checkpoint=/path/jafar.pth')
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
    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
    with runner_checkpoint_loading():
        runner.train()


if __name__ == '__main__':
    main()
