"""One PNG with an image, its low-res backbone features and each upsampler's output on a shared PCA basis.

    python tools/visualize_features.py demo.jpg --upsamplers bilinear,jafar \
        --checkpoint jafar=jafar_dinov2_vits14.pth --points "0.5,0.45 0.2,0.8" --out features.png

Optional query points add, for the attention-based upsamplers (JAFAR, AnyUp), the attention map of each point
over the feature grid. Weights: the backbone loads timm's pretrained weights (cache or hub), --backbone-checkpoint
a local file, or --random-init random ones; upsamplers load --checkpoint NAME=PATH (random weights otherwise).
"""
import argparse

import torch

from cli_args import add_timm_model_arguments, add_upsampler_arguments, upsamplers_from_args

from mmjafar.models.backbones import TimmViT
from mmjafar.visualization import feature_figure, load_guidance_image, parse_points


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('image', help='image file')
    add_upsampler_arguments(parser)
    add_timm_model_arguments(parser, 'backbone', 'vit_small_patch14_dinov2.lvd142m', 'backbone')
    parser.add_argument('--size', type=int, default=448, help='shorter image side fed to the backbone')
    parser.add_argument('--output-size', type=int, default=None,
                        help='shorter side of the upsampled maps, aspect kept (default: the image size)')
    parser.add_argument('--points', default=None, help='query points "x,y x,y" as fractions of width and height')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--out', default='features.png', help='output PNG')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    device = torch.device(args.device)
    backbone = TimmViT(args.backbone, checkpoint=args.backbone_checkpoint, random_init=args.random_init).to(device)
    pixels, image = load_guidance_image(args.image, args.size, backbone.patch_size)
    image = image.to(device)
    with torch.no_grad():
        features = backbone(image)[0]
    upsamplers = upsamplers_from_args(args, backbone.embed_dim, device)
    output_size = None
    if args.output_size:
        height, width = pixels.shape[:2]
        scale = args.output_size / min(height, width)
        output_size = (round(height * scale), round(width * scale))
    seconds = feature_figure(pixels, image, features, upsamplers, args.out, output_size=output_size,
                             points=parse_points(args.points), feature_name=args.backbone)
    timing = ', '.join(f'{k} {v:.2f} s' for k, v in seconds.items())
    print(f'saved {args.out} (features {tuple(features.shape[-2:])}; upsampling: {timing})')


if __name__ == '__main__':
    main()
