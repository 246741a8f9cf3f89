"""Write PNGs of BEV samples: the six camera images, the GT vehicle mask and, with a checkpoint, the prediction.

    # GT only (no model needed)
    python projects/bev/tools/visualize_bev.py projects/bev/configs/simplebev/CONFIG.py --num 4
    # with predictions of a trained model
    python projects/bev/tools/visualize_bev.py CONFIG --checkpoint work_dirs/x/best_bev_iou_vehicle_epoch_90.pth \\
        --indices 0 10 20 --out-dir vis/simplebev
    # a dataset config alone also works in GT-only mode
    python projects/bev/tools/visualize_bev.py projects/bev/configs/_base_/datasets/nus_bev_synthetic.py

The images are drawn as the model sees them (after the validation pipeline's resize and crop).
"""
import argparse
import os
import os.path as osp
from typing import List, Optional


def parse_args(argv=None) -> argparse.Namespace:
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(description='PNG of camera images, GT BEV and predicted BEV masks')
    parser.add_argument('config', help='a BEV config (model + dataset), or a dataset config for GT only')
    parser.add_argument('--checkpoint', help='model checkpoint; without it only the GT is drawn')
    parser.add_argument('--split', choices=['val', 'train', 'test'], default='val',
                        help='which dataloader of the config to read (its pipeline is used as is)')
    parser.add_argument('--indices', type=int, nargs='+', help='sample indices (default: the first --num)')
    parser.add_argument('--num', type=int, default=4, help='number of samples without --indices (default 4)')
    parser.add_argument('--out-dir', default='vis_bev', help='output folder (default vis_bev)')
    parser.add_argument('--device', default='cpu', help='device of the model, e.g. cuda:0 (default cpu)')
    parser.add_argument('--tile-width', type=int, default=320, help='width of one camera tile in pixels')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, metavar='KEY=VALUE',
                        help='override config entries, e.g. val_dataloader.dataset.data_root=data/x')
    return parser.parse_args(argv)


def main(argv=None) -> List[str]:
    """Run the tool; returns the written PNG paths."""
    args = parse_args(argv)
    import torch
    from mmengine.dataset import pseudo_collate
    from mmengine.registry import DATASETS, MODELS, init_default_scope
    from mmengine.runner import load_checkpoint

    from mmjafar.engine import load_config, runner_checkpoint_loading

    import projects.bev.bev  # noqa: F401  (registration, also for dataset-only configs)
    from projects.bev.bev.visualization import save_bev_visualization

    cfg = load_config(args.config, args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmjafar'))
    loader_cfg = cfg.get(f'{args.split}_dataloader')
    if loader_cfg is None:
        raise KeyError(f'{args.config} has no {args.split}_dataloader')
    dataset = DATASETS.build(loader_cfg['dataset'])

    model: Optional[torch.nn.Module] = None
    if args.checkpoint:
        if 'model' not in cfg:
            raise KeyError(f'{args.config} has no model; pass a model config to draw predictions')
        model = MODELS.build(cfg.model)
        with runner_checkpoint_loading():  # Runner checkpoints also hold the message hub and scheduler states
            load_checkpoint(model, args.checkpoint, map_location='cpu', strict=True)
        model = model.to(args.device).eval()

    indices = args.indices if args.indices else list(range(min(args.num, len(dataset))))
    os.makedirs(args.out_dir, exist_ok=True)
    written = []
    for index in indices:
        if not 0 <= index < len(dataset):
            raise IndexError(f'sample index {index} outside the {len(dataset)} samples of the {args.split} split')
        packed = dataset[index]
        sample = packed['data_samples']
        pred = None
        if model is not None:
            with torch.no_grad():
                sample = model.test_step(pseudo_collate([packed]))[0]
            pred = sample.pred_bev.seg
        gt = sample.get('gt_bev')
        token = sample.metainfo.get('sample_token', str(index))
        path = osp.join(args.out_dir, f'{index:05d}_{token}.png')
        save_bev_visualization(path, packed['inputs']['imgs'], gt_seg=None if gt is None else gt.seg,
                               gt_valid=None if gt is None else gt.valid, pred_seg=pred,
                               cam_names=sample.metainfo.get('cam_names', None) or dataset.cameras,
                               tile_width=args.tile_width, title=token[:8])
        written.append(path)
        print(f'wrote {path}')
    return written


if __name__ == '__main__':
    main()
