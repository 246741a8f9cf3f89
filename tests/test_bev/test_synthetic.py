"""The synthetic nuScenes generator: the devkit loads it, splits resolve, annotations round-trip to the ego frame."""
import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
from nuscenes import NuScenes
from nuscenes.utils.data_classes import Box
from nuscenes.utils.splits import create_splits_scenes
from pyquaternion import Quaternion

from projects.bev.bev.geometry import CAMERA_NAMES

REPO = Path(__file__).resolve().parents[2]


def test_devkit_loads_tables_and_mini_splits(bev_synthetic, bev_synthetic_root):
    nusc = NuScenes('v1.0-mini', str(bev_synthetic_root), verbose=False)
    splits = create_splits_scenes()
    names = {s['name'] for s in nusc.scene}
    assert names & set(splits['mini_train']) == {'scene-0061'}
    assert names & set(splits['mini_val']) == {'scene-0103'}
    assert len(nusc.sample) == len(bev_synthetic.samples) == 5
    for sample in nusc.sample:
        assert set(sample['data']) == {*CAMERA_NAMES, 'LIDAR_TOP'}
        assert len(sample['anns']) == len(bev_synthetic.objects)
        for cam in CAMERA_NAMES:
            assert (bev_synthetic_root / nusc.get('sample_data', sample['data'][cam])['filename']).is_file()


def test_annotations_round_trip_to_ego_frame(bev_synthetic, bev_synthetic_root):
    """Global annotations mapped back with the LIDAR_TOP ego pose give the planted ego positions, for every
    (differently posed) sample; the ego pose is non-trivial."""
    nusc = NuScenes('v1.0-mini', str(bev_synthetic_root), verbose=False)
    by_name = {o.category: o for o in bev_synthetic.objects}
    assert len(by_name) == 3
    for planted in bev_synthetic.samples:
        sample = nusc.get('sample', planted.token)
        pose = nusc.get('ego_pose', nusc.get('sample_data', sample['data']['LIDAR_TOP'])['ego_pose_token'])
        assert np.linalg.norm(pose['translation']) > 100 and abs(Quaternion(pose['rotation']).degrees) > 20
        centers = []
        for ann_token in sample['anns']:
            ann = nusc.get('sample_annotation', ann_token)
            box = Box(ann['translation'], ann['size'], Quaternion(ann['rotation']))
            box.translate(-np.array(pose['translation']))
            box.rotate(Quaternion(pose['rotation']).inverse)
            centers.append(box.center)
        np.testing.assert_allclose(sorted(map(tuple, centers)),
                                   sorted(tuple(o.center) for o in bev_synthetic.objects), atol=1e-6)


def test_cli_writes_tree(tmp_path, capsys):
    out = tmp_path / 'nus'
    tool = REPO / 'projects/bev/tools/create_synthetic_nuscenes.py'
    assert 'usage' in subprocess.run([sys.executable, str(tool), '--help'], capture_output=True, text=True,
                                     check=True).stdout
    spec = importlib.util.spec_from_file_location('create_synthetic_nuscenes', tool)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(['--out', str(out), '--height', '45', '--width', '80'])
    assert 'mini_train: 3' in capsys.readouterr().out
    assert len(list((out / 'samples' / 'CAM_FRONT').glob('*.jpg'))) == 5
    assert (out / 'v1.0-mini' / 'sample_annotation.json').is_file()
