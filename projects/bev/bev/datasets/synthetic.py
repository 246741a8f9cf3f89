"""A tiny synthetic dataset in the real nuScenes format (design brief §5), for tests and CI.

``make_synthetic_nuscenes(root)`` writes ``root/v1.0-mini/*.json`` (all 13 devkit tables), one small JPEG per
camera and sample under ``root/samples/CAM_*/`` and a tiny map PNG, so that ``NuScenes('v1.0-mini', root)``
loads it and ``create_splits_scenes()['mini_train' | 'mini_val']`` find its two scenes (``scene-0061`` and
``scene-0103``). Nothing binary is committed: the tree is generated on demand (pytest fixture, or
``projects/bev/tools/create_synthetic_nuscenes.py``).

Every sample holds the same objects at the same *ego-frame* positions (``DEFAULT_OBJECTS``); the ego poses differ
(translation plus yaw), so the global annotation coordinates differ from sample to sample and a correct
global -> ego transform gives identical BEV targets for all samples. The camera images show each object as the
filled outline of its projected 3-D box (its own colour) over a sky/ground background, rendered with the same
camera model (pixel centres at integer coordinates) as ``projects.bev.bev.geometry.project_to_cameras``.

Cameras follow the brief: ``R = Rz(yaw) R0`` with ``R0`` mapping x_cam -> -y, y_cam -> -z, z_cam -> +x,
``t = (1.5 cos yaw, 1.5 sin yaw, 1.6)``, ``fx = fy = 1266 W / 1600``, principal point at the image centre
``((W - 1) / 2, (H - 1) / 2)`` so a point straight ahead of a camera lands on its centre column exactly.
"""
import hashlib
import json
import os
import os.path as osp
from dataclasses import dataclass, field
from typing import Dict, List, Sequence, Tuple

import cv2
import numpy as np
from pyquaternion import Quaternion

from ..geometry import CAMERA_NAMES

VERSION = 'v1.0-mini'
#: Camera yaws (degrees, about ego z) in ``CAMERA_NAMES`` order.
CAMERA_YAWS_DEG = (55.0, 0.0, -55.0, 110.0, 180.0, -110.0)
CAMERA_HEIGHT = 1.6
CAMERA_RADIUS = 1.5
LIDAR_NAME = 'LIDAR_TOP'
VISIBILITY_LEVELS = {'1': 'v0-40', '2': 'v40-60', '3': 'v60-80', '4': 'v80-100'}
CATEGORIES = ('vehicle.car', 'vehicle.truck', 'human.pedestrian.adult')


@dataclass(frozen=True)
class PlantedObject:
    """One annotated object, given in the ego frame of every sample (x forward, y left, z up; metres)."""

    name: str
    category: str
    center: Tuple[float, float, float]
    size: Tuple[float, float, float]  # nuScenes order: width, length, height
    yaw: float  # radians about ego z
    visibility: str  # '1' (0-40 %) .. '4' (80-100 %)
    color: Tuple[int, int, int]  # RGB used to paint it into the camera images

    @property
    def is_vehicle(self) -> bool:
        return 'vehicle' in self.category


#: The default layout. Footprints avoid half-cell corners on both the 0.5 m and the 2 m grids, so rounded
#: polygon vertices (brief §1) are unambiguous:
#: * ``car_front``: 10 m ahead, fully visible; 2 m grid rows 19..21, cols 24..26; CAM_FRONT centre column.
#: * ``car_left_occluded``: 12 m to the left, turned 90°, visibility '1' (masked out by min_visibility 2);
#:   2 m grid rows 24..26, cols 18..20.
#: * ``truck_back_right``: 20 m behind, 10 m to the right, visibility '3'; 2 m grid rows 33..37, cols 29..31.
#: * ``car_far``: 70 m ahead, outside the ±50 m grid (absent from every target).
#: * ``pedestrian``: not a vehicle (absent from the vehicle targets).
DEFAULT_OBJECTS: Tuple[PlantedObject, ...] = (
    PlantedObject('car_front', 'vehicle.car', (10.0, 0.0, 0.8), (2.2, 4.4, 1.6), 0.0, '4', (220, 30, 30)),
    PlantedObject('car_left_occluded', 'vehicle.car', (0.0, 12.0, 0.8), (2.2, 4.4, 1.6), np.pi / 2, '1',
                  (30, 200, 30)),
    PlantedObject('truck_back_right', 'vehicle.truck', (-20.0, -10.0, 1.5), (2.6, 7.0, 3.0), 0.0, '3',
                  (230, 200, 20)),
    PlantedObject('car_far', 'vehicle.car', (70.0, 5.0, 0.8), (2.0, 4.5, 1.6), 0.0, '4', (200, 30, 200)),
    PlantedObject('pedestrian', 'human.pedestrian.adult', (6.0, -4.0, 0.9), (0.7, 0.7, 1.8), 0.0, '4',
                  (30, 60, 230)),
)

#: (scene name, split, log location, ego poses as (x, y, yaw_deg) per sample). The scene names are mini-split
#: names of the devkit, so ``create_splits_scenes()`` resolves them.
DEFAULT_SCENES: Tuple[Tuple[str, str, str, Tuple[Tuple[float, float, float], ...]], ...] = (
    ('scene-0061', 'mini_train', 'singapore-onenorth',
     ((600.0, 1600.0, 30.0), (604.3, 1602.5, 33.0), (608.5, 1605.2, 36.0))),
    ('scene-0103', 'mini_val', 'boston-seaport',
     ((1200.0, 900.0, -100.0), (1199.1, 895.0, -98.0))),
)


@dataclass
class SyntheticSample:
    token: str
    scene_name: str
    split: str
    timestamp: int
    ego2global: np.ndarray  # (4, 4)
    img_paths: Dict[str, str]  # camera -> path relative to root


@dataclass
class SyntheticNuScenes:
    """What ``make_synthetic_nuscenes`` wrote: where, which samples, and the planted objects."""

    root: str
    version: str
    image_size: Tuple[int, int]  # (H, W) of every camera image
    cam2img: np.ndarray  # (3, 3), shared by all cameras
    cam2ego: np.ndarray  # (6, 4, 4) in CAMERA_NAMES order
    objects: Tuple[PlantedObject, ...]
    samples: List[SyntheticSample] = field(default_factory=list)

    def samples_of(self, split: str) -> List[SyntheticSample]:
        return [s for s in self.samples if s.split == split]


def _token(*parts) -> str:
    return hashlib.md5('/'.join(str(p) for p in parts).encode()).hexdigest()


def _rz(yaw: float) -> np.ndarray:
    c, s = np.cos(yaw), np.sin(yaw)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _rigid(rot: np.ndarray, trans: Sequence[float]) -> np.ndarray:
    mat = np.eye(4)
    mat[:3, :3] = rot
    mat[:3, 3] = trans
    return mat


def synthetic_intrinsics(image_size: Tuple[int, int]) -> np.ndarray:
    """``fx = fy = 1266 W / 1600``, principal point at the image centre ``((W-1)/2, (H-1)/2)``."""
    height, width = image_size
    focal = 1266.0 * width / 1600.0
    return np.array([[focal, 0.0, (width - 1) / 2.0], [0.0, focal, (height - 1) / 2.0], [0.0, 0.0, 1.0]])


def synthetic_cam2ego() -> np.ndarray:
    """``(6, 4, 4)`` camera -> ego transforms in ``CAMERA_NAMES`` order (brief §5)."""
    r0 = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])  # columns: x_cam, y_cam, z_cam in ego
    mats = []
    for yaw_deg in CAMERA_YAWS_DEG:
        yaw = np.deg2rad(yaw_deg)
        trans = (CAMERA_RADIUS * np.cos(yaw), CAMERA_RADIUS * np.sin(yaw), CAMERA_HEIGHT)
        mats.append(_rigid(_rz(yaw) @ r0, trans))
    return np.stack(mats)


def box_corners(obj: PlantedObject) -> np.ndarray:
    """``(8, 3)`` ego-frame corners of a planted box (first four at the top)."""
    w, l, h = obj.size
    x = l / 2 * np.array([1, 1, -1, -1, 1, 1, -1, -1])
    y = w / 2 * np.array([1, -1, -1, 1, 1, -1, -1, 1])
    z = h / 2 * np.array([1, 1, 1, 1, -1, -1, -1, -1])
    return np.stack([x, y, z], axis=1) @ _rz(obj.yaw).T + np.asarray(obj.center)


def _background(image_size: Tuple[int, int], camera_index: int, sample_index: int) -> np.ndarray:
    """RGB sky above the horizon (the principal row: cameras look horizontally), ground below, mild noise."""
    height, width = image_size
    img = np.empty((height, width, 3), dtype=np.float32)
    horizon = (height - 1) / 2.0
    rows = np.arange(height, dtype=np.float32)[:, None]
    sky = rows <= horizon
    img[..., 0] = np.where(sky, 150.0, 90.0)
    img[..., 1] = np.where(sky, 180.0, 90.0)
    img[..., 2] = np.where(sky, 215.0, 95.0)
    rng = np.random.default_rng(1000 * sample_index + camera_index)
    img += rng.normal(0.0, 6.0, size=img.shape)
    return img


def render_camera(objects: Sequence[PlantedObject], cam2ego: np.ndarray, cam2img: np.ndarray,
                  image_size: Tuple[int, int], camera_index: int = 0, sample_index: int = 0) -> np.ndarray:
    """``(H, W, 3)`` uint8 RGB view of the planted objects (far to near, filled projected-box hulls)."""
    img = _background(image_size, camera_index, sample_index)
    ego2cam = np.linalg.inv(cam2ego)
    drawable = []
    for obj in objects:
        pts = box_corners(obj) @ ego2cam[:3, :3].T + ego2cam[:3, 3]
        if (pts[:, 2] < 0.1).any():  # partly behind the camera: skip rather than clip
            continue
        pix = pts @ cam2img.T
        uv = pix[:, :2] / pix[:, 2:3]
        drawable.append((float(pts[:, 2].mean()), uv, obj.color))
    for _, uv, color in sorted(drawable, key=lambda d: -d[0]):
        hull = cv2.convexHull(np.round(uv * 16).astype(np.int32))  # 4 fractional bits
        cv2.fillConvexPoly(img, hull, tuple(float(c) for c in color), lineType=cv2.LINE_8, shift=4)
    return np.clip(img, 0, 255).astype(np.uint8)


def _write_json(path: str, records: List[dict]) -> None:
    with open(path, 'w') as f:
        json.dump(records, f, indent=1)


def make_synthetic_nuscenes(root: str, image_size: Tuple[int, int] = (90, 160),
                            objects: Sequence[PlantedObject] = DEFAULT_OBJECTS,
                            scenes=DEFAULT_SCENES, jpeg_quality: int = 95) -> SyntheticNuScenes:
    """Write a tiny nuScenes-format tree (``v1.0-mini`` tables, camera JPEGs, a map PNG) under ``root``.

    Args:
        root: output folder (created; existing files of the same names are overwritten).
        image_size: ``(H, W)`` of every camera JPEG (e.g. 90×160; the pipeline reads the real size).
        objects: the planted objects, in the ego frame of every sample.
        scenes: ``(name, split, location, ((x, y, yaw_deg), ...))`` per scene; names must be devkit mini-split
            scene names (``scene-0061`` ... ) for ``create_splits_scenes`` to find them.
        jpeg_quality: JPEG quality of the camera images.

    Returns:
        A ``SyntheticNuScenes`` describing the samples (tokens, ego poses, image paths) and the objects.
    """
    height, width = int(image_size[0]), int(image_size[1])
    if height < 8 or width < 8:
        raise ValueError(f'make_synthetic_nuscenes: image_size={image_size} is too small; use at least 8×8')
    if len(objects) == 0:
        raise ValueError('make_synthetic_nuscenes: plant at least one object')
    table_dir = osp.join(root, VERSION)
    os.makedirs(table_dir, exist_ok=True)
    os.makedirs(osp.join(root, 'maps'), exist_ok=True)
    for cam in CAMERA_NAMES:
        os.makedirs(osp.join(root, 'samples', cam), exist_ok=True)

    cam2img = synthetic_intrinsics((height, width))
    cam2ego = synthetic_cam2ego()
    out = SyntheticNuScenes(root=str(root), version=VERSION, image_size=(height, width), cam2img=cam2img,
                            cam2ego=cam2ego, objects=tuple(objects))

    categories = sorted(set(CATEGORIES) | {o.category for o in objects})
    tables: Dict[str, List[dict]] = {name: [] for name in (
        'category', 'attribute', 'visibility', 'instance', 'sensor', 'calibrated_sensor', 'ego_pose', 'log',
        'scene', 'sample', 'sample_data', 'sample_annotation', 'map')}
    tables['category'] = [dict(token=_token('category', c), name=c, description=f'synthetic {c}')
                          for c in categories]
    tables['visibility'] = [dict(token=k, level=v, description=f'visibility of whole object is {v[1:]} %')
                            for k, v in VISIBILITY_LEVELS.items()]
    channels = (*CAMERA_NAMES, LIDAR_NAME)
    tables['sensor'] = [dict(token=_token('sensor', ch), channel=ch,
                             modality='lidar' if ch == LIDAR_NAME else 'camera') for ch in channels]
    map_png = osp.join('maps', 'synthetic_map.png')
    cv2.imwrite(osp.join(root, map_png), np.zeros((8, 8), dtype=np.uint8))

    for scene_name, split, location, poses in scenes:
        if not poses:
            raise ValueError(f'make_synthetic_nuscenes: scene {scene_name} needs at least one ego pose')
        log_token = _token('log', scene_name)
        tables['log'].append(dict(token=log_token, logfile=f'synthetic-{scene_name}', vehicle='n000',
                                  date_captured='2018-07-24', location=location))
        calib = {}
        for index, ch in enumerate(channels):
            calib[ch] = _token('calibrated_sensor', scene_name, ch)
            if ch == LIDAR_NAME:
                rec = dict(translation=[0.9, 0.0, 1.8], rotation=[1.0, 0.0, 0.0, 0.0], camera_intrinsic=[])
            else:
                rot = Quaternion(matrix=cam2ego[index, :3, :3])
                rec = dict(translation=cam2ego[index, :3, 3].tolist(), rotation=rot.elements.tolist(),
                           camera_intrinsic=cam2img.tolist())
            tables['calibrated_sensor'].append(dict(token=calib[ch], sensor_token=_token('sensor', ch), **rec))

        scene_token = _token('scene', scene_name)
        sample_tokens = [_token('sample', scene_name, k) for k in range(len(poses))]
        instance_tokens = [_token('instance', scene_name, o.name) for o in objects]
        ann_tokens = [[_token('ann', scene_name, k, o.name) for o in objects] for k in range(len(poses))]
        base_time = 1531883530000000 + 10 ** 9 * len(tables['scene'])
        for k, (ex, ey, eyaw_deg) in enumerate(poses):
            timestamp = base_time + 500000 * k
            ego_q = Quaternion(axis=(0.0, 0.0, 1.0), degrees=eyaw_deg)
            ego2global = _rigid(ego_q.rotation_matrix, (ex, ey, 0.0))
            prev_s = sample_tokens[k - 1] if k > 0 else ''
            next_s = sample_tokens[k + 1] if k + 1 < len(poses) else ''
            tables['sample'].append(dict(token=sample_tokens[k], timestamp=timestamp, scene_token=scene_token,
                                         prev=prev_s, next=next_s))
            ego_token = _token('ego_pose', scene_name, k)
            tables['ego_pose'].append(dict(token=ego_token, timestamp=timestamp, translation=[ex, ey, 0.0],
                                           rotation=ego_q.elements.tolist()))
            img_paths = {}
            for ci, ch in enumerate(channels):
                sd_token = _token('sample_data', scene_name, k, ch)
                is_cam = ch != LIDAR_NAME
                if is_cam:
                    filename = f'samples/{ch}/{sd_token}.jpg'
                    img = render_camera(objects, cam2ego[ci], cam2img, (height, width), ci,
                                        len(out.samples))
                    cv2.imwrite(osp.join(root, filename), img[..., ::-1],
                                [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)])
                    img_paths[ch] = filename
                else:
                    filename = f'samples/{ch}/{sd_token}.pcd.bin'  # not written: the BEV pipeline never reads it
                tables['sample_data'].append(dict(
                    token=sd_token, sample_token=sample_tokens[k], ego_pose_token=ego_token,
                    calibrated_sensor_token=calib[ch], timestamp=timestamp,
                    fileformat='jpg' if is_cam else 'pcd', is_key_frame=True,
                    height=height if is_cam else 0, width=width if is_cam else 0, filename=filename,
                    prev=_token('sample_data', scene_name, k - 1, ch) if k > 0 else '',
                    next=_token('sample_data', scene_name, k + 1, ch) if k + 1 < len(poses) else ''))
            for oi, obj in enumerate(objects):
                center = ego2global[:3, :3] @ np.asarray(obj.center) + ego2global[:3, 3]
                rot = ego_q * Quaternion(axis=(0.0, 0.0, 1.0), radians=obj.yaw)
                tables['sample_annotation'].append(dict(
                    token=ann_tokens[k][oi], sample_token=sample_tokens[k], instance_token=instance_tokens[oi],
                    visibility_token=obj.visibility, attribute_tokens=[], translation=center.tolist(),
                    size=list(obj.size), rotation=rot.elements.tolist(),
                    prev=ann_tokens[k - 1][oi] if k > 0 else '',
                    next=ann_tokens[k + 1][oi] if k + 1 < len(poses) else '',
                    num_lidar_pts=10, num_radar_pts=0))
            out.samples.append(SyntheticSample(token=sample_tokens[k], scene_name=scene_name, split=split,
                                               timestamp=timestamp, ego2global=ego2global,
                                               img_paths=img_paths))
        for oi, obj in enumerate(objects):
            tables['instance'].append(dict(token=instance_tokens[oi], category_token=_token('category', obj.category),
                                           nbr_annotations=len(poses), first_annotation_token=ann_tokens[0][oi],
                                           last_annotation_token=ann_tokens[-1][oi]))
        tables['scene'].append(dict(token=scene_token, log_token=log_token, nbr_samples=len(poses),
                                    first_sample_token=sample_tokens[0], last_sample_token=sample_tokens[-1],
                                    name=scene_name, description=f'synthetic {split} scene'))

    tables['map'] = [dict(token=_token('map', 'synthetic'), log_tokens=[r['token'] for r in tables['log']],
                          category='semantic_prior', filename=map_png)]
    for name, records in tables.items():
        _write_json(osp.join(table_dir, f'{name}.json'), records)
    return out
