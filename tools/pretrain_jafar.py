"""Task-agnostic pretraining of JAFAR (or another upsampler) on a frozen backbone with mmengine's Runner.

    python tools/pretrain_jafar.py configs/pretrain/jafar_demo.py                 # offline CPU demo (< 10 min)
    python tools/pretrain_jafar.py configs/pretrain/jafar_vit-s14-dinov2_1xb4-100k_imagenet-448.py \\
        --cfg-options train_dataloader.dataset.data_root=/path/to/imagenet/train
    python tools/pretrain_jafar.py CONFIG --resume                                 # continue after a crash
    TRAIN_SCRIPT=tools/pretrain_jafar.py bash tools/dist_train.sh CONFIG 8         # multi-GPU (torchrun)

Unlike tools/train.py, bfloat16 autocast is on by default whenever CUDA is available (--no-amp: float32).
"""
from cli_args import train_main


def main(argv=None) -> None:
    train_main('Pretrain a feature upsampler on a frozen backbone', __doc__, auto_amp=True, argv=argv)


if __name__ == '__main__':
    main()
