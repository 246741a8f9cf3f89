"""Parameters, GFLOPs and peak memory of one training step of a BEV config at batch 1.

    python projects/bev/tools/analyze_bev_model.py \
        projects/bev/configs/simplebev/simplebev_dinov2-s14_jafar_nus-vehicle.py
    python projects/bev/tools/analyze_bev_model.py CONFIG --device cuda --cfg-options model.target_stride=4

Conventions:

* weights do not change any number, so the model is built offline (random ViT and upsampler weights, no hub, no
  checkpoint files); inputs are random images of the config's training size with the synthetic rig's cameras;
* GFLOPs = multiply-accumulates (mmengine's / fvcore's convention, 1 MAC = 1 "FLOP") of one *forward* pass
  (image branch + view transform + BEV network + all heads, as in training), counted by
  ``mmengine.analysis.FlopAnalyzer`` from a JIT trace, with a handle added for
  ``scaled_dot_product_attention`` (JAFAR's lean attention): ``B·H·Lq·Lk·(d + d_v)``. Element-wise ops are not
  counted; ``grid_sample`` counts 4 per output element;
* peak memory of one training step (forward + backward + optimizer step at batch 1):
  ``torch.cuda.max_memory_allocated`` on CUDA (the paper's convention), else the process's peak resident set
  (``VmHWM`` from /proc, which also holds the Python/PyTorch runtime; the resident size before the step is
  printed for reference).
"""
import argparse
import time
from typing import Dict, List


def parse_args(argv=None) -> argparse.Namespace:
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(description='Parameters, forward GFLOPs (multiply-adds) and peak training '
                                                 'memory of a BEV config at batch 1 (random weights)')
    parser.add_argument('config', help='BEV config file (projects/bev/configs/...)')
    parser.add_argument('--device', default=None, help='cpu or cuda (default: cuda when available)')
    parser.add_argument('--skip-flops', action='store_true', help='only parameters and memory')
    parser.add_argument('--skip-memory', action='store_true', help='only parameters and GFLOPs')
    parser.add_argument('--vit-depth', type=int, default=None,
                        help='build the ViT with this many blocks (a quick look; the default keeps the real depth)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config entries')
    return parser.parse_args(argv)


def sdpa_flop_jit(inputs: List, outputs: List) -> int:
    """MACs of ``scaled_dot_product_attention(q, k, v)``: ``Q K^T`` plus ``P V``."""
    from mmengine.analysis.jit_handles import get_shape
    q, k, v = (get_shape(x) for x in inputs[:3])
    batch = 1
    for s in q[:-2]:
        batch *= s
    return int(batch * q[-2] * k[-2] * (q[-1] + v[-1]))


def build_offline_model(cfg, vit_depth=None):
    """The config's model with random ViT / upsampler weights (no hub, no files)."""
    from mmjafar.registry import MODELS
    backbone = cfg.model.backbone
    backbone.update(pretrained=False, random_init=True, checkpoint=None)
    if vit_depth is not None:
        backbone.model_kwargs = dict(backbone.get('model_kwargs') or {}, depth=vit_depth)
    if isinstance(cfg.model.get('upsampler'), dict):
        cfg.model.upsampler.init_cfg = None
    return MODELS.build(cfg.model)


def image_size_of(cfg):
    for step in cfg.train_dataloader.dataset.pipeline:
        if step['type'] == 'MultiViewImageAffineAug':
            return tuple(step['final_size'])
    raise ValueError('the config\'s train pipeline has no MultiViewImageAffineAug (final_size)')


def random_batch(model, image_size, device, num_cams: int = 6):
    """Normalised random images, the synthetic rig's cameras, identity BEV augmentation and random GT."""
    import torch
    from mmengine.structures import BaseDataElement, PixelData

    from projects.bev.bev.datasets.synthetic import synthetic_cam2ego, synthetic_intrinsics
    height, width = image_size
    inputs = dict(imgs=torch.randn(1, num_cams, 3, height, width, device=device),
                  cam2img=torch.tensor(synthetic_intrinsics(image_size), dtype=torch.float32,
                                       device=device).expand(1, num_cams, 3, 3),
                  cam2ego=torch.tensor(synthetic_cam2ego()[:num_cams], dtype=torch.float32,
                                       device=device).unsqueeze(0),
                  bev_aug=torch.eye(4, device=device).unsqueeze(0))
    rows, cols = model.grid.shape
    sample = BaseDataElement(metainfo=dict(sample_token='random'))
    seg = (torch.rand(1, rows, cols) > 0.97).float()
    sample.gt_bev = PixelData(seg=seg, valid=torch.ones(1, rows, cols, dtype=torch.bool),
                              centerness=torch.rand(1, rows, cols),
                              offset=torch.where(seg.bool(), torch.randn(2, rows, cols),
                                                 torch.full((2, rows, cols), 255.0)),
                              valid_centerness=torch.ones(1, rows, cols, dtype=torch.bool))
    return inputs, [sample]


def measure_training_step(model, inputs, samples, device) -> Dict[str, float]:
    """Peak memory and time of forward + backward + AdamW step at batch 1."""
    import torch

    from mmjafar.utils.profiling import proc_status_kb
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-4, weight_decay=1e-7)
    model.train()
    out = {}
    if device.startswith('cuda'):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        out['allocated_before_mib'] = torch.cuda.memory_allocated() / 2 ** 20
    else:
        out['rss_before_mib'] = proc_status_kb('VmRSS') / 1024
    start = time.perf_counter()
    losses = model(inputs, samples, mode='loss')
    sum(losses.values()).backward()
    torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.grad is not None], 5.0)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    if device.startswith('cuda'):
        torch.cuda.synchronize()
        out['peak_mib'] = torch.cuda.max_memory_allocated() / 2 ** 20
    else:
        out['peak_mib'] = proc_status_kb('VmHWM') / 1024
    out['step_s'] = time.perf_counter() - start
    return out


def count_flops(model, inputs) -> Dict[str, float]:
    """Forward multiply-adds (GFLOPs in the mmengine/fvcore convention), total and per top-level module."""
    import torch
    from mmengine.analysis import FlopAnalyzer

    class Forward(torch.nn.Module):
        def __init__(self, bev_model):
            super().__init__()
            self.model = bev_model

        def forward(self, imgs, cam2img, cam2ego, bev_aug):
            # every head's output is returned: the trace would drop branches whose result is unused
            preds = self.model.forward_bev(dict(imgs=imgs, cam2img=cam2img, cam2ego=cam2ego, bev_aug=bev_aug))
            return tuple(preds.values())

    model.eval()
    analyzer = FlopAnalyzer(Forward(model), (inputs['imgs'], inputs['cam2img'], inputs['cam2ego'],
                                             inputs['bev_aug']))
    analyzer.set_op_handle('aten::scaled_dot_product_attention', sdpa_flop_jit)
    analyzer.unsupported_ops_warnings(False)
    analyzer.uncalled_modules_warnings(False)
    with torch.no_grad():
        total = analyzer.total() / 1e9
        by_module = {k: v / 1e9 for k, v in analyzer.by_module().items() if k.count('.') <= 2 and k}
        skipped = dict(analyzer.unsupported_ops())
    return dict(total=total, by_module=by_module, unsupported=skipped)


def main(argv=None) -> None:
    args = parse_args(argv)
    import torch
    from mmengine.registry import DefaultScope

    import projects.bev.bev  # noqa: F401  (registration)
    from mmjafar.engine import load_config
    cfg = load_config(args.config, args.cfg_options)
    device = args.device or ('cuda' if torch.cuda.is_available() else 'cpu')
    DefaultScope.get_instance('analyze_bev_model', scope_name='mmjafar')
    model = build_offline_model(cfg, args.vit_depth).to(device)
    image_size = image_size_of(cfg)
    inputs, samples = random_batch(model, image_size, device)
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    rows, cols = model.grid.shape
    print(f'config: {args.config}')
    print(f'model: {type(model).__name__}, upsampler: {type(model.upsampler).__name__ if model.upsampler else None}, '
          f'images: 6 x {image_size[0]}x{image_size[1]}, grid: {rows}x{cols}x{model.grid.num_heights}, '
          f'image features: {model.img_branch.output_size(image_size)}, device: {device}')
    print(f'parameters: {total / 1e6:.2f} M total, {trainable / 1e6:.2f} M trainable')
    if not args.skip_memory:
        mem = measure_training_step(model, inputs, samples, device)
        if device.startswith('cuda'):
            print(f'training step (batch 1): peak {mem["peak_mib"]:.0f} MiB allocated '
                  f'(torch.cuda.max_memory_allocated; {mem["allocated_before_mib"]:.0f} MiB before the step), '
                  f'{mem["step_s"]:.2f} s')
        else:
            print(f'training step (batch 1): peak resident set {mem["peak_mib"]:.0f} MiB (VmHWM; '
                  f'{mem["rss_before_mib"]:.0f} MiB resident before the step), {mem["step_s"]:.2f} s')
    if not args.skip_flops:
        flops = count_flops(model, inputs)
        print(f'forward: {flops["total"]:.2f} GFLOPs (multiply-adds, mmengine FlopAnalyzer)')
        for name, value in sorted(flops['by_module'].items(), key=lambda kv: -kv[1]):
            if value >= 0.01:
                print(f'  {name:<40s} {value:9.2f}')
        if flops['unsupported']:
            print('  not counted (element-wise or unsupported): '
                  + ', '.join(f'{k} x{v}' for k, v in sorted(flops['unsupported'].items())))


if __name__ == '__main__':
    main()
