"""Evaluate a trained model of an mmjafar config (mmseg metrics such as mIoU; mmdet3d metrics for BEV).

    python tools/test.py CONFIG work_dirs/x/epoch_20.pth
    python tools/test.py CONFIG CHECKPOINT --out work_dirs/x/metrics.json --show-dir work_dirs/x/vis
    bash tools/dist_test.sh CONFIG CHECKPOINT 8
"""
import argparse
import json
import os
import os.path as osp

from mmengine.config import Config, DictAction
from mmengine.dist import is_main_process
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from mmjafar.engine import init_cpu_distributed, runner_checkpoint_loading, setup_pretrain_cfg


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Test a model of an mmjafar config')
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='folder of the logs (default ./work_dirs/<config name>)')
    parser.add_argument('--out', help='write the metrics to this JSON file')
    parser.add_argument('--show-dir', help='save visualised predictions under work_dir/<show-dir> (mmseg)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config entries')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm'], default='none')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def main() -> None:
    args = parse_args()
    if not osp.isfile(args.checkpoint):
        raise SystemExit(f'tools/test.py: checkpoint {args.checkpoint!r} does not exist')
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    setup_pretrain_cfg(cfg, work_dir=args.work_dir, amp=False, launcher=args.launcher, config_path=args.config)
    cfg.load_from = args.checkpoint
    if args.show_dir:
        vis = cfg.default_hooks.get('visualization')
        if vis is None:
            raise SystemExit('--show-dir needs a `visualization` entry in default_hooks (mmseg configs have one)')
        vis.update(draw=True, interval=1)
        cfg.visualizer.save_dir = osp.join(cfg.work_dir, args.show_dir)
    init_cpu_distributed(cfg)
    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
    with runner_checkpoint_loading():
        metrics = runner.test()
    if args.out and is_main_process():
        os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
        with open(args.out, 'w') as f:
            json.dump({k: float(v) if isinstance(v, (int, float)) else str(v) for k, v in metrics.items()}, f,
                      indent=2)


if __name__ == '__main__':
    main()
