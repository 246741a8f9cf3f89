"""Fixtures of the BEV tests: one synthetic nuScenes-format tree per session (design brief §5)."""
from pathlib import Path

import pytest

from projects.bev.bev.datasets.synthetic import SyntheticNuScenes, make_synthetic_nuscenes


@pytest.fixture(scope='session')
def bev_synthetic(tmp_path_factory) -> SyntheticNuScenes:
    """The generated tree's description: samples (tokens, ego poses, splits) and the planted objects."""
    return make_synthetic_nuscenes(str(tmp_path_factory.mktemp('bev_synthetic')))


@pytest.fixture(scope='session')
def bev_synthetic_root(bev_synthetic) -> Path:
    """Path of a synthetic ``v1.0-mini`` tree (90×160 JPEGs; scene-0061 = mini_train with 3 samples,
    scene-0103 = mini_val with 2), loadable by ``nuscenes.NuScenes('v1.0-mini', root)``."""
    return Path(bev_synthetic.root)
