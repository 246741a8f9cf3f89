"""Cache the per-sample BEV infos of a nuScenes split (``NuScenesBEVDataset(ann_file=...)``).

Indexing trainval with the devkit takes tens of seconds and several GB per process; the pickle loads in about a
second. Image paths are stored relative to the data root, so the cache moves with the dataset.

    python projects/bev/tools/create_bev_infos.py --data-root data/nuscenes --version v1.0-trainval --split train
    python projects/bev/tools/create_bev_infos.py --data-root data/nuscenes --version v1.0-trainval --split val
    # then: train_ann_file = 'bev_infos_v1.0-trainval_train.pkl' (relative to data_root) in the dataset config
"""
import argparse
import os
import os.path as osp
import pickle
import time

# The six nuScenes cameras (projects.bev.bev.geometry.CAMERA_NAMES; not imported here so --help stays fast).
CAMERA_NAMES = ('CAM_FRONT_LEFT', 'CAM_FRONT', 'CAM_FRONT_RIGHT', 'CAM_BACK_LEFT', 'CAM_BACK', 'CAM_BACK_RIGHT')


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Write the BEV info cache (pickle) of one nuScenes split')
    parser.add_argument('--data-root', default='data/nuscenes', help='nuScenes root (holds v1.0-*/ and samples/)')
    parser.add_argument('--version', default='v1.0-trainval', help='v1.0-trainval or v1.0-mini')
    parser.add_argument('--split', default='train',
                        help='train, val, mini_train, mini_val, or a key of <data-root>/<version>/splits.json')
    parser.add_argument('--cameras', nargs='+', default=list(CAMERA_NAMES), help='camera channels, in order')
    parser.add_argument('--categories', nargs='+', default=['vehicle'],
                        help='keep annotations whose category contains one of these substrings')
    parser.add_argument('--out', help='output pickle (default <data-root>/bev_infos_<version>_<split>.pkl)')
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    from projects.bev.bev.datasets.nuscenes_bev import load_bev_infos  # after --help: imports torch
    out = args.out or osp.join(args.data_root, f'bev_infos_{args.version}_{args.split}.pkl')
    start = time.time()
    print(f'indexing {args.version} {args.split} under {args.data_root} ...', flush=True)
    infos = load_bev_infos(args.data_root, args.version, args.split, args.cameras, args.categories, progress=True)
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    with open(out, 'wb') as f:
        pickle.dump(infos, f, protocol=pickle.HIGHEST_PROTOCOL)
    boxes = sum(len(info['gt_polygons']) for info in infos['data_list'])
    print(f'\nwrote {len(infos["data_list"])} samples ({boxes} boxes) to {out} in {time.time() - start:.1f} s')


if __name__ == '__main__':
    main()
