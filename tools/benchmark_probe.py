"""Throughput (images/s) of a linear-probe config's model at its crop size: inference and one training step.

    python tools/benchmark_probe.py configs/linear_probe/jafar_vit-s14-dinov2_1xb4-20e_ade20k-448x448.py
    python tools/benchmark_probe.py CONFIG --batch 4 --iters 3 --device cuda --random-weights

``--random-weights`` builds the backbone with random weights and skips the upsampler checkpoint (same compute,
no downloads); timings exclude one warm-up iteration.
"""
import argparse
import time
import warnings

import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

import mmjafar  # noqa: F401


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Time a linear-probe model')
    parser.add_argument('config')
    parser.add_argument('--batch', type=int, default=1)
    parser.add_argument('--iters', type=int, default=3)
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--threads', type=int, default=None, help='torch CPU threads (default: torch\'s own)')
    parser.add_argument('--random-weights', action='store_true')
    return parser.parse_args()


def timed(fn, iters: int, device: str) -> float:
    fn()  # warm-up
    sync = torch.cuda.synchronize if device.startswith('cuda') else (lambda: None)
    sync()
    start = time.perf_counter()
    for _ in range(iters):
        fn()
    sync()
    return (time.perf_counter() - start) / iters


def main() -> None:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = Config.fromfile(args.config)
    if args.random_weights:
        cfg.model.backbone.update(pretrained=False, random_init=True)
        cfg.model.neck.pop('init_cfg', None)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    from mmseg.registry import MODELS
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        model = MODELS.build(cfg.model).to(args.device)
    height, width = cfg.crop_size
    image = torch.randn(args.batch, 3, height, width, device=args.device)
    classes = cfg.model.decode_head.get('num_classes', 1)
    target = torch.randint(0, classes, (args.batch, height, width), device=args.device)
    head_params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(head_params, lr=1e-4)

    def infer():
        with torch.no_grad():
            model(image, mode='tensor')

    def train_step():
        logits = model(image, mode='tensor')
        loss = torch.nn.functional.cross_entropy(logits, target) if classes > 1 else logits.mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    model.eval()
    t_infer = timed(infer, args.iters, args.device)
    model.train()
    t_train = timed(train_step, args.iters, args.device)
    print(f'{args.config}: {height}x{width}, batch {args.batch}, {torch.get_num_threads()} threads, {args.device}: '
          f'inference {args.batch / t_infer:.3f} img/s ({t_infer:.2f} s/batch), '
          f'training step {args.batch / t_train:.3f} img/s ({t_train:.2f} s/batch), '
          f'trainable parameters {sum(p.numel() for p in head_params)}')


if __name__ == '__main__':
    main()
