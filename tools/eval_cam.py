"""Grad-CAM faithfulness of upsampled ViT features (JAFAR Table 2): A.D, A.I, A.G, Coherency, Complexity, ADCC.

    python tools/eval_cam.py /data/imagenet/val --upsamplers bilinear,jafar --checkpoint jafar=jafar_vitb16.pth
    torchrun --nproc_per_node 2 tools/eval_cam.py /data/imagenet/val --launcher pytorch ...

The classifier (default timm vit_base_patch16_224, 14x14 tokens) is frozen; the tokens entering its last block
are upsampled to --cam-size by each upsampler before the CAM is formed. A seeded subset of --num-images
images of the ImageNet-style folder is drawn and only correctly classified ones are scored. Results are the
same for any number of processes.
"""
import argparse
import json

import torch
from mmengine.dist import get_dist_info, init_dist, is_main_process

from cli_args import add_timm_model_arguments, add_upsampler_arguments, upsamplers_from_args

from mmjafar.evaluation import UpsampledGradCAM, build_vit_classifier, evaluate_cam_dataset, format_cam_table
from mmjafar.evaluation.cam_runner import list_labelled_images, read_class_index


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('data_root', help='ImageNet-style folder root/<class folder>/<images>')
    add_upsampler_arguments(parser)
    add_timm_model_arguments(parser, 'model', 'vit_base_patch16_224', 'ViT classifier (head included)')
    parser.add_argument('--class-index', default=None, help='JSON folder name -> class index (default: sorted order)')
    parser.add_argument('--num-images', type=int, default=2000, help='candidates drawn (0: all images)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--cam-size', type=int, default=224)
    parser.add_argument('--batch-size', type=int, default=16)
    parser.add_argument('--workers', type=int, default=4)
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--out', default=None, help='JSON file for the summary and per-image values')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.launcher != 'none':
        init_dist(args.launcher, backend='nccl' if args.device.startswith('cuda') else 'gloo')
    device = torch.device(args.device)
    if device.type == 'cuda':
        device = torch.device('cuda', torch.cuda.current_device())
    classifier = build_vit_classifier(args.model, checkpoint=args.model_checkpoint,
                                      random_init=args.random_init).to(device)
    index = read_class_index(args.class_index) if args.class_index else None
    samples = list_labelled_images(args.data_root, index)
    upsamplers = upsamplers_from_args(args, classifier.embed_dim, device)
    results = {}
    for name, upsampler in upsamplers.items():
        gradcam = UpsampledGradCAM(classifier, upsampler, (args.cam_size, args.cam_size)).to(device)
        results[name] = evaluate_cam_dataset(
            gradcam, samples, num_images=args.num_images or None, seed=args.seed, batch_size=args.batch_size,
            num_workers=args.workers, device=device, progress=True)
    if is_main_process():
        first = next(iter(results.values()))
        print(f'{first["num_images"]} correctly classified of {first["num_candidates"]} candidates '
              f'(top-1 {first["accuracy"]:.1f}%), world size {get_dist_info()[1]}')
        print(format_cam_table(results))
        if args.out:
            with open(args.out, 'w') as f:
                json.dump(results, f, indent=1)


if __name__ == '__main__':
    main()
