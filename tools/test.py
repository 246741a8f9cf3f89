"""Evaluate a trained model of an mmjafar config (mmseg metrics such as mIoU; mmdet3d metrics for BEV).

    python tools/test.py CONFIG work_dirs/x/epoch_20.pth
    python tools/test.py CONFIG CHECKPOINT --out work_dirs/x/metrics.json --show-dir work_dirs/x/vis
    bash tools/dist_test.sh CONFIG CHECKPOINT 8
"""
from cli_args import parse_runner_args, runner_cfg, runner_parser

from mmjafar.engine import run_test


def main(argv=None) -> None:
    parser = runner_parser('Test a model of an mmjafar config', __doc__)
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--out', help='write the metrics to this JSON file')
    parser.add_argument('--show-dir', help='save visualised predictions under work_dir/<show-dir> (mmseg)')
    args = parse_runner_args(parser, argv)
    run_test(runner_cfg(args), args.checkpoint, show_dir=args.show_dir, out=args.out)


if __name__ == '__main__':
    main()
