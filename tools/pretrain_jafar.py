"""Task-agnostic pretraining of JAFAR (or another upsampler) on a frozen backbone with mmengine's Runner.

    python tools/pretrain_jafar.py configs/pretrain/jafar_demo.py                 # offline CPU demo (< 10 min)
    python tools/pretrain_jafar.py configs/pretrain/jafar_vit-s14-dinov2_1xb4-100k_imagenet-448.py \
        --cfg-options train_dataloader.dataset.data_root=/path/to/imagenet/train
    python tools/pretrain_jafar.py CONFIG --resume                                 # continue after a crash
    TRAIN_SCRIPT=tools/pretrain_jafar.py bash tools/dist_train.sh CONFIG 8         # multi-GPU (torchrun)
"""
from mmengine.runner import Runner

from mmjafar.engine import cfg_from_args, init_cpu_distributed, runner_arg_parser, runner_checkpoint_loading


def main() -> None:
    parser = runner_arg_parser('Pretrain a feature upsampler on a frozen backbone')
    amp = parser.add_mutually_exclusive_group()
    amp.add_argument('--amp', dest='amp', action='store_true', default=None,
                     help='bfloat16 autocast (CUDA only; the default whenever CUDA is available)')
    amp.add_argument('--no-amp', dest='amp', action='store_false', help='float32 even on GPU')
    args = parser.parse_args()
    cfg = cfg_from_args(args, amp=args.amp)
    init_cpu_distributed(cfg)
    runner = Runner.from_cfg(cfg)
    with runner_checkpoint_loading():  # --resume reads mmengine checkpoints (torch >= 2.6 weights-only loading)
        runner.train()


if __name__ == '__main__':
    main()
