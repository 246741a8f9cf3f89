"""Zero-shot open-vocabulary segmentation (JAFAR Table 3): MaskCLIP dense CLIP ViT-B/16 features upsampled by
any registered upsampler, per-pixel argmax over class-name prompts; mIoU / aAcc by mmseg's IoUMetric.

    python tools/eval_openvocab.py voc /data/VOCdevkit/VOC2012 --upsampler jafar --checkpoint jafar_clip.pth
    torchrun --nproc_per_node 2 tools/eval_openvocab.py ade20k /data/ADEChallengeData2016 --launcher pytorch

Weights: the timm CLIP visual tower from the Hugging Face cache/hub (or --clip-checkpoint), the open_clip text
tower by tag or local file (--text-pretrained), or precomputed class embeddings (--text-embeddings).
"""
import argparse
import json

import torch
from mmengine.config import Config

from mmjafar.engine import build_runner
from mmjafar.evaluation.openvocab_segmentor import DATASETS, openvocab_test_cfg
from mmjafar.models.upsamplers.builder import resolve_upsampler_name


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('dataset', choices=sorted(DATASETS))
    parser.add_argument('data_root', help='VOC2012 / ADEChallengeData2016 / cityscapes folder')
    parser.add_argument('--upsampler', default='bilinear', help='registered upsampler name')
    parser.add_argument('--checkpoint', default=None, help='upsampler weights')
    parser.add_argument('--upsampler-args', default='{}', help='JSON constructor arguments of the upsampler')
    parser.add_argument('--clip-model', default='vit_base_patch16_clip_224.openai', help='timm CLIP ViT')
    parser.add_argument('--clip-checkpoint', default=None, help='local weights of the CLIP visual tower')
    parser.add_argument('--random-init', action='store_true', help='allow a random visual tower (testing only)')
    parser.add_argument('--clip-model-args', default='{}', help='JSON extra timm.create_model arguments')
    parser.add_argument('--text-model', default='ViT-B-16', help='open_clip model of the text tower')
    parser.add_argument('--text-pretrained', default='openai', help='open_clip tag or local checkpoint file')
    parser.add_argument('--text-embeddings', default=None, help='precomputed (K, D) class embeddings (.pt)')
    parser.add_argument('--short-side', type=int, default=448, help='images are resized to this shorter side')
    parser.add_argument('--max-images', type=int, default=None, help='evaluate the first N images only')
    parser.add_argument('--workers', type=int, default=2)
    parser.add_argument('--work-dir', default='work_dirs/eval_openvocab')
    parser.add_argument('--out', default=None, help='JSON file for the metrics')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none')
    return parser.parse_args(argv)


def build_cfg(args) -> Config:
    upsampler = dict(type=resolve_upsampler_name(args.upsampler), **json.loads(args.upsampler_args))
    model = dict(visual=dict(model_name=args.clip_model, checkpoint=args.clip_checkpoint,
                             random_init=args.random_init, model_kwargs=json.loads(args.clip_model_args)),
                 upsampler=upsampler, upsampler_checkpoint=args.checkpoint, text_embeddings=args.text_embeddings,
                 text_model=args.text_model, text_pretrained=args.text_pretrained)
    backend = 'nccl' if torch.cuda.is_available() else 'gloo'
    return Config(openvocab_test_cfg(args.dataset, args.data_root, model, args.work_dir,
                                     scale=(4 * args.short_side, args.short_side), num_workers=args.workers,
                                     launcher=args.launcher, backend=backend, max_images=args.max_images))


def main(argv=None):
    args = parse_args(argv)
    runner = build_runner(build_cfg(args))  # a CPU --launcher pytorch run starts its gloo group first
    metrics = runner.test()
    if runner.rank == 0:
        print(json.dumps({'dataset': args.dataset, 'upsampler': args.upsampler, **metrics}))
        if args.out:
            with open(args.out, 'w') as f:
                json.dump(metrics, f, indent=1)
    return metrics


if __name__ == '__main__':
    main()
