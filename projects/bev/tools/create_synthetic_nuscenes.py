"""Write the tiny synthetic nuScenes-format dataset (``v1.0-mini`` tables + camera JPEGs) used by the BEV tests,
the ``*_synthetic.py`` configs and CI.

    python projects/bev/tools/create_synthetic_nuscenes.py                    # -> data/bev_synthetic
    python projects/bev/tools/create_synthetic_nuscenes.py --out /tmp/nus --height 180 --width 320
"""
import argparse
import os.path as osp


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Generate a tiny synthetic nuScenes (v1.0-mini format) tree: '
                                                 '2 scenes (scene-0061 = mini_train, scene-0103 = mini_val), '
                                                 'planted cars, a truck and a pedestrian at known ego positions.')
    parser.add_argument('--out', default='data/bev_synthetic', help='output folder (default: data/bev_synthetic)')
    parser.add_argument('--height', type=int, default=90, help='camera image height in pixels (default 90)')
    parser.add_argument('--width', type=int, default=160, help='camera image width in pixels (default 160)')
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    from projects.bev.bev.datasets.synthetic import make_synthetic_nuscenes  # after --help: imports torch
    info = make_synthetic_nuscenes(args.out, image_size=(args.height, args.width))
    splits = sorted({s.split for s in info.samples})
    counts = ', '.join(f'{split}: {len(info.samples_of(split))}' for split in splits)
    print(f'wrote {info.version} synthetic nuScenes to {osp.abspath(args.out)} ({len(info.samples)} samples; '
          f'{counts}; {len(info.objects)} objects per sample; images {args.height}x{args.width})')


if __name__ == '__main__':
    main()
