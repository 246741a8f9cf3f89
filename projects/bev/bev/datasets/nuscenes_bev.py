"""nuScenes multi-camera samples with ego-frame vehicle boxes, for BEV segmentation (design brief §1, §4).

``load_bev_infos`` walks the nuscenes-devkit tables once and returns plain numpy per sample; the ``NuScenes``
object is dropped afterwards, and mmengine's ``BaseDataset`` serialises the list so dataloader workers share it.
``projects/bev/tools/create_bev_infos.py`` caches the same list as a pickle (``ann_file``) because trainval
takes tens of seconds and GBs of RAM to index.

One sample (``data_info``) holds:

* ``sample_token``, ``scene_name``, ``timestamp``;
* ``img_paths`` (N camera files; relative to ``data_root`` in the cache, absolute in the dataset),
  ``cam_names``, ``cam2img`` (N, 3, 3) original intrinsics, ``cam2ego`` (N, 4, 4), ``ego2global`` (4, 4) of the
  ``LIDAR_TOP`` ego pose (extrinsics are relative to it; per-camera ego poses are ignored, as both references do);
* the kept boxes in that ego frame: ``gt_polygons`` (M, 4, 2) ground corners x, y; ``gt_centers`` (M, 3);
  ``gt_sizes`` (M, 3) width, length, height; ``gt_yaws`` (M,); ``gt_visibility`` (M,) 1..4;
  ``gt_instance_ids`` (M,) row of the instance table; ``gt_categories`` (M,) names;
* ``min_visibility`` (the dataset's setting; ``RasterizeBEVTargets`` uses it unless given its own).
"""
import os.path as osp
import pickle
from typing import List, Optional, Sequence

import numpy as np
from mmengine.dataset import BaseDataset
from mmengine.utils import track_iter_progress

from mmjafar.registry import DATASETS
from ..geometry import CAMERA_NAMES

PREDEFINED_SPLITS = {'train': 'v1.0-trainval', 'val': 'v1.0-trainval', 'test': 'v1.0-test',
                     'mini_train': 'v1.0-mini', 'mini_val': 'v1.0-mini'}
CACHE_FORMAT = 1


def _rigid(rotation_wxyz: Sequence[float], translation: Sequence[float]) -> np.ndarray:
    from pyquaternion import Quaternion
    mat = np.eye(4)
    mat[:3, :3] = Quaternion(rotation_wxyz).rotation_matrix
    mat[:3, 3] = translation
    return mat


def _scenes_of_split(nusc, split: str) -> List[str]:
    from nuscenes.utils.splits import get_scenes_of_split
    try:
        return list(get_scenes_of_split(split, nusc))
    except ValueError as err:
        raise ValueError(f'NuScenesBEVDataset: unknown split {split!r}: use one of {sorted(PREDEFINED_SPLITS)} '
                         f'or a key of {osp.join(nusc.dataroot, nusc.version, "splits.json")} ({err})') from None


def _sample_info(nusc, sample: dict, cameras: Sequence[str], categories: Sequence[str]) -> dict:
    """Plain-numpy record of one keyframe (paths relative to the dataroot)."""
    from nuscenes.utils.data_classes import Box
    from pyquaternion import Quaternion

    lidar = nusc.get('sample_data', sample['data']['LIDAR_TOP'])
    pose = nusc.get('ego_pose', lidar['ego_pose_token'])
    ego_q = Quaternion(pose['rotation'])
    ego_t = np.asarray(pose['translation'], dtype=np.float64)

    img_paths, cam2img, cam2ego = [], [], []
    for cam in cameras:
        if cam not in sample['data']:
            raise KeyError(f'NuScenesBEVDataset: sample {sample["token"]} has no {cam} image; '
                           f'available channels: {sorted(sample["data"])}')
        record = nusc.get('sample_data', sample['data'][cam])
        calib = nusc.get('calibrated_sensor', record['calibrated_sensor_token'])
        img_paths.append(record['filename'])
        cam2img.append(np.asarray(calib['camera_intrinsic'], dtype=np.float64))
        cam2ego.append(_rigid(calib['rotation'], calib['translation']))

    polygons, centers, sizes, yaws, vis, inst, cats = [], [], [], [], [], [], []
    for ann_token in sample['anns']:
        ann = nusc.get('sample_annotation', ann_token)
        name = ann['category_name']
        if not any(c in name for c in categories):
            continue
        box = Box(ann['translation'], ann['size'], Quaternion(ann['rotation']))
        box.translate(-ego_t)
        box.rotate(ego_q.inverse)
        polygons.append(box.bottom_corners()[:2].T)
        centers.append(box.center)
        sizes.append(box.wlh)
        yaws.append(box.orientation.yaw_pitch_roll[0])
        vis.append(int(ann['visibility_token']) if ann['visibility_token'] else 0)
        inst.append(nusc.getind('instance', ann['instance_token']))
        cats.append(name)
    num = len(polygons)
    return dict(
        sample_token=sample['token'],
        scene_name=nusc.get('scene', sample['scene_token'])['name'],
        timestamp=int(sample['timestamp']),
        cam_names=list(cameras),
        img_paths=img_paths,
        cam2img=np.stack(cam2img).astype(np.float32),
        cam2ego=np.stack(cam2ego).astype(np.float32),
        ego2global=_rigid(pose['rotation'], pose['translation']),
        gt_polygons=np.asarray(polygons, dtype=np.float32).reshape(num, 4, 2),
        gt_centers=np.asarray(centers, dtype=np.float32).reshape(num, 3),
        gt_sizes=np.asarray(sizes, dtype=np.float32).reshape(num, 3),
        gt_yaws=np.asarray(yaws, dtype=np.float32).reshape(num),
        gt_visibility=np.asarray(vis, dtype=np.uint8).reshape(num),
        gt_instance_ids=np.asarray(inst, dtype=np.int64).reshape(num),
        gt_categories=np.asarray(cats, dtype=str).reshape(num),
    )


def load_bev_infos(data_root: str, version: str, split: str, cameras: Sequence[str] = CAMERA_NAMES,
                   categories: Sequence[str] = ('vehicle',), progress: bool = False) -> dict:
    """Walk the devkit once: ``dict(metainfo=..., data_list=[per-sample dicts])`` sorted by (scene, time).

    Args:
        data_root: nuScenes root (holds ``<version>/*.json`` and ``samples/``).
        version: ``v1.0-trainval``, ``v1.0-mini`` (or ``v1.0-test``).
        split: ``train``/``val`` (trainval), ``mini_train``/``mini_val`` (mini) or a key of
            ``<data_root>/<version>/splits.json``.
        cameras: camera channels, in the order the images are stacked.
        categories: keep annotations whose category name contains any of these substrings (``'vehicle'``:
            car, truck, bus.*, trailer, construction, motorcycle, bicycle, emergency.*).
        progress: print a progress bar (the trainval walk takes a while).
    """
    from nuscenes import NuScenes

    if not osp.isdir(osp.join(data_root, version)):
        raise FileNotFoundError(f'NuScenesBEVDataset: no {version} tables under {data_root!r}; set data_root to '
                                'the nuScenes root (the folder holding v1.0-*/ and samples/)')
    expected = PREDEFINED_SPLITS.get(split)
    if expected is not None and expected != version:
        raise ValueError(f'NuScenesBEVDataset: split {split!r} belongs to {expected}, not {version}')
    nusc = NuScenes(version=version, dataroot=data_root, verbose=False)
    scene_names = set(_scenes_of_split(nusc, split))
    scene_tokens = {s['token'] for s in nusc.scene if s['name'] in scene_names}
    if not scene_tokens:
        raise ValueError(f'NuScenesBEVDataset: none of the {len(scene_names)} scenes of split {split!r} is in '
                         f'{osp.join(data_root, version)}')
    samples = sorted((s for s in nusc.sample if s['scene_token'] in scene_tokens),
                     key=lambda s: (nusc.get('scene', s['scene_token'])['name'], s['timestamp']))
    iterator = track_iter_progress(samples) if progress else samples
    data_list = [_sample_info(nusc, s, cameras, categories) for s in iterator]
    metainfo = dict(version=version, split=split, cameras=tuple(cameras), categories=tuple(categories),
                    cache_format=CACHE_FORMAT)
    return dict(metainfo=metainfo, data_list=data_list)


@DATASETS.register_module()
class NuScenesBEVDataset(BaseDataset):
    """nuScenes keyframes with the six camera images and ego-frame vehicle boxes (BEV segmentation).

    Args:
        data_root: nuScenes root (``<data_root>/<version>/*.json``, ``<data_root>/samples/CAM_*/``).
        version: ``'v1.0-trainval'`` or ``'v1.0-mini'``.
        split: ``'train'``, ``'val'``, ``'mini_train'``, ``'mini_val'`` or a custom split of
            ``<data_root>/<version>/splits.json``.
        cameras: camera channels in stacking order (default: the six nuScenes cameras, front-left first).
        categories: category-name substrings to keep (default ``('vehicle',)``).
        min_visibility: boxes below this visibility level (1..4) are masked out of the loss and metric
            (``valid`` False) by ``RasterizeBEVTargets``; 2 = SimpleBEV's 40 % filter, 1 = no filtering.
        ann_file: optional cache written by ``projects/bev/tools/create_bev_infos.py`` (relative to
            ``data_root`` unless absolute). Its version, split, cameras and categories must match.
        pipeline: transforms (``LoadMultiViewImages`` ... ``PackBEVInputs``).
        test_mode: mmengine's test mode (no refetching of failed samples).
        indices: optional subset (an int keeps the first samples).
        serialize_data, lazy_init, max_refetch: as ``mmengine.dataset.BaseDataset``.
    """

    METAINFO = dict(classes=('vehicle',))

    def __init__(self, data_root: str, version: str = 'v1.0-trainval', split: str = 'train',
                 cameras: Sequence[str] = CAMERA_NAMES, categories: Sequence[str] = ('vehicle',),
                 min_visibility: int = 2, ann_file: str = '', pipeline: Sequence = (),
                 test_mode: bool = False, indices=None, serialize_data: bool = True, lazy_init: bool = False,
                 max_refetch: int = 1000, metainfo: Optional[dict] = None) -> None:
        if min_visibility not in (1, 2, 3, 4):
            raise ValueError(f'NuScenesBEVDataset: min_visibility must be 1..4 (1 = keep all), got {min_visibility}')
        if not cameras:
            raise ValueError('NuScenesBEVDataset: cameras must list at least one channel')
        self.version = version
        self.split = split
        self.cameras = tuple(cameras)
        self.categories = tuple(categories)
        self.min_visibility = int(min_visibility)
        super().__init__(ann_file=ann_file, metainfo=metainfo, data_root=data_root, data_prefix={},
                         pipeline=list(pipeline), test_mode=test_mode, indices=indices,
                         serialize_data=serialize_data, lazy_init=lazy_init, max_refetch=max_refetch)

    def _load_cache(self) -> dict:
        if not osp.isfile(self.ann_file):
            raise FileNotFoundError(
                f'NuScenesBEVDataset: ann_file {self.ann_file!r} not found; create it with `python '
                f'projects/bev/tools/create_bev_infos.py --data-root {self.data_root} --version {self.version} '
                f'--split {self.split} --out {self.ann_file}` or set ann_file=\'\' to index the devkit directly')
        with open(self.ann_file, 'rb') as f:
            cache = pickle.load(f)
        meta = cache.get('metainfo', {})
        wanted = dict(version=self.version, split=self.split, cameras=self.cameras, categories=self.categories,
                      cache_format=CACHE_FORMAT)
        for key, value in wanted.items():
            got = tuple(meta[key]) if isinstance(meta.get(key), (list, tuple)) else meta.get(key)
            if got != value:
                raise ValueError(f'NuScenesBEVDataset: ann_file {self.ann_file!r} has {key}={got!r} but the '
                                 f'dataset wants {value!r}; regenerate it with projects/bev/tools/create_bev_infos.py')
        return cache

    def load_data_list(self) -> List[dict]:
        cache = self._load_cache() if self.ann_file else load_bev_infos(
            self.data_root, self.version, self.split, self.cameras, self.categories)
        data_list = []
        for index, info in enumerate(cache['data_list']):
            info = dict(info)
            info['sample_idx'] = index
            info['img_paths'] = [p if osp.isabs(p) else osp.join(self.data_root, p) for p in info['img_paths']]
            info['min_visibility'] = self.min_visibility
            data_list.append(info)
        return data_list
