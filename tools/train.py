"""Train an mmseg / mmdet3d model of an mmjafar config (linear probes, BEV models) with mmengine's Runner.

    python tools/train.py configs/linear_probe/jafar_vit-s14-dinov2_1xb4-20e_ade20k-448x448.py
    python tools/train.py CONFIG --work-dir work_dirs/x --cfg-options train_dataloader.batch_size=2
    python tools/train.py CONFIG --resume                     # continue from the last checkpoint of the work dir
    bash tools/dist_train.sh CONFIG 8 [--amp]                 # multi-GPU (torchrun; gloo on CPU)
"""
from cli_args import train_main


def main(argv=None) -> None:
    train_main('Train a model of an mmjafar config', __doc__, argv=argv)


if __name__ == '__main__':
    main()
