"""NuScenesBEVDataset on the synthetic nuScenes tree: exact GT cells, filters, projection, cache, preprocessor."""
import importlib.util
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.dataset import pseudo_collate

from projects.bev.bev.datasets import BEVDataPreprocessor, NuScenesBEVDataset, make_synthetic_nuscenes
from projects.bev.bev.geometry import BEVGrid, project_to_cameras

REPO = Path(__file__).resolve().parents[2]
GRID = dict(x_range=(-50, 50), y_range=(-50, 50), resolution=2.0, z_centers=(-2.75, -0.25, 2.25, 4.75))
FINE_GRID = dict(x_range=(-50, 50), y_range=(-50, 50), resolution=0.5)
# Cells of the planted vehicles on the 2 m grid (rows along -x, cols along -y; corners rounded, fillPoly).
CAR_FRONT = (range(19, 22), range(24, 27))          # x 7.8..12.2, y -1.1..1.1
CAR_OCCLUDED = (range(24, 27), range(18, 21))       # turned 90°: x -1.1..1.1, y 9.8..14.2, visibility '1'
TRUCK = (range(33, 38), range(29, 32))              # x -23.5..-16.5, y -11.3..-8.7, visibility '3'


def _cells(rows, cols) -> set:
    return {(r, c) for r in rows for c in cols}


def _targets(root, split='mini_train', grid=GRID, **kwargs):
    pipeline = [dict(type='RasterizeBEVTargets', grid=grid)]
    return NuScenesBEVDataset(str(root), version='v1.0-mini', split=split, pipeline=pipeline, **kwargs)


def _val_pipeline(final_size=(56, 120)):
    return [dict(type='LoadMultiViewImages'),
            dict(type='MultiViewImageAffineAug', final_size=final_size, is_train=False),
            dict(type='RandomBEVTransform', enabled=False),
            dict(type='RasterizeBEVTargets', grid=GRID),
            dict(type='PackBEVInputs')]


def test_splits_and_sample_records(bev_synthetic, bev_synthetic_root):
    train = _targets(bev_synthetic_root)
    val = _targets(bev_synthetic_root, split='mini_val')
    assert [train.get_data_info(i)['sample_token'] for i in range(len(train))] == \
        [s.token for s in bev_synthetic.samples_of('mini_train')]
    assert len(val) == 2 and {val.get_data_info(i)['scene_name'] for i in range(2)} == {'scene-0103'}
    info = train.get_data_info(0)
    assert info['cam2img'].shape == (6, 3, 3) and info['cam2ego'].shape == (6, 4, 4)
    np.testing.assert_allclose(info['cam2ego'], bev_synthetic.cam2ego, atol=1e-5)
    np.testing.assert_allclose(info['ego2global'], bev_synthetic.samples[0].ego2global, atol=1e-9)
    assert all(Path(p).is_file() for p in info['img_paths'])
    # category filter: the pedestrian is dropped, the out-of-grid car is kept in the infos
    assert sorted(info['gt_categories']) == ['vehicle.car'] * 3 + ['vehicle.truck']
    assert sorted(info['gt_visibility'].tolist()) == [1, 3, 4, 4]
    assert info['gt_polygons'].shape == (4, 4, 2)


def test_exact_gt_cells_every_sample(bev_synthetic_root):
    """Same ego-frame layout, different (non-trivial) ego poses: identical, cell-exact targets."""
    for split in ('mini_train', 'mini_val'):
        dataset = _targets(bev_synthetic_root, split=split)
        for index in range(len(dataset)):
            gt = dataset[index]['gt_bev']
            vis = gt['visibility'][0]
            assert set(zip(*np.nonzero(vis == 4))) == _cells(*CAR_FRONT)     # car_far (70 m) is absent
            assert set(zip(*np.nonzero(vis == 1))) == _cells(*CAR_OCCLUDED)
            assert set(zip(*np.nonzero(vis == 3))) == _cells(*TRUCK)
            seg = set(zip(*np.nonzero(gt['seg'][0])))
            assert seg == _cells(*CAR_FRONT) | _cells(*CAR_OCCLUDED) | _cells(*TRUCK)
            # min_visibility 2 (default): only the occluded car's cells are invalid
            assert set(zip(*np.nonzero(~gt['valid'][0]))) == _cells(*CAR_OCCLUDED)


def test_fine_grid_cells(bev_synthetic_root):
    gt = _targets(bev_synthetic_root, grid=FINE_GRID)[0]['gt_bev']
    assert gt['seg'].shape == (1, 200, 200)
    rows, cols = np.nonzero(gt['visibility'][0] == 4)
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (76, 84, 98, 102)  # x 7.8..12.2, y -1.1..1.1


def test_visibility_filter(bev_synthetic_root):
    keep_all = _targets(bev_synthetic_root, min_visibility=1)[0]['gt_bev']
    assert keep_all['valid'].all() and keep_all['valid_centerness'].all()
    strict = _targets(bev_synthetic_root, min_visibility=4)[0]['gt_bev']
    assert set(zip(*np.nonzero(~strict['valid'][0]))) == _cells(*CAR_OCCLUDED) | _cells(*TRUCK)
    default = _targets(bev_synthetic_root)[0]['gt_bev']
    # centerness is not supervised around the invisible car: its centre is at continuous (row, col) = (25, 19)
    # and its Gaussian (σ = 3 cells) is >= 0.1 within 6.44 cells: cell centre (25.5, 24.5) is 5.52 away,
    # (25.5, 25.5) 6.52 away
    vc = default['valid_centerness'][0]
    assert not vc[25, 19] and not vc[25, 24] and vc[25, 25] and not vc[19, 19] and vc[18, 19]
    assert vc[20, 25] and vc[35, 30]
    with pytest.raises(ValueError, match='min_visibility'):
        _targets(bev_synthetic_root, min_visibility=0)


def test_category_filter(bev_synthetic_root):
    peds = _targets(bev_synthetic_root, categories=('human',))
    info = peds.get_data_info(0)
    assert list(info['gt_categories']) == ['human.pedestrian.adult']
    # pedestrian at x 5.65..6.35, y -4.35..-3.65 -> corners round to rows 22, cols 27
    assert set(zip(*np.nonzero(peds[0]['gt_bev']['seg'][0]))) == {(22, 27)}
    trucks = _targets(bev_synthetic_root, categories=('truck',))
    assert set(zip(*np.nonzero(trucks[0]['gt_bev']['seg'][0]))) == _cells(*TRUCK)


def test_auxiliary_targets(bev_synthetic_root):
    gt = _targets(bev_synthetic_root)[0]['gt_bev']
    # car_front centre (10, 0) -> continuous (row, col) = (20, 25): the corner of four cells
    centerness, offset = gt['centerness'][0], gt['offset']
    np.testing.assert_allclose(centerness[19:21, 24:26], np.exp(-0.5 / 18.0), rtol=1e-5)
    np.testing.assert_allclose(offset[:, 19, 24], (0.5, 0.5))
    np.testing.assert_allclose(offset[:, 21, 26], (-1.5, -1.5))
    assert (offset[:, gt['seg'][0] == 0] == 255).all()
    assert centerness.max() <= 1.0 and centerness[0, 0] < 1e-6


def test_projection_into_expected_pixel(bev_synthetic_root):
    """car_front (10 m ahead, 0.8 m high) lands on CAM_FRONT's centre column, on red pixels, and in no other
    camera, with the packed (augmented) intrinsics."""
    dataset = NuScenesBEVDataset(str(bev_synthetic_root), version='v1.0-mini', split='mini_val',
                                 pipeline=_val_pipeline(), test_mode=True)
    packed = dataset[0]
    meta = packed['data_samples'].metainfo
    height, width = meta['img_shape']
    point = torch.tensor([[[10.0, 0.0, 0.8]]])
    uv, valid = project_to_cameras(point, torch.from_numpy(meta['cam2ego'])[None],
                                   torch.from_numpy(meta['cam2img'])[None], (height, width))
    assert valid[0, :, 0].tolist() == [False, True, False, False, False, False]
    u_n, v_n = uv[0, 1, 0].tolist()
    assert abs(u_n) < 1e-4  # centre column: u = (W - 1) / 2
    u, v = (u_n + 1) * width / 2 - 0.5, (v_n + 1) * height / 2 - 0.5
    assert v > (height - 1) / 2 - 0.5 * height * 17 / 100  # below the horizon row, which the top crop moved up
    pixel = packed['inputs']['imgs'][1, :, int(round(v)), int(round(u))].tolist()
    assert pixel[0] > 180 and pixel[1] < 80 and pixel[2] < 80  # car_front is painted red (220, 30, 30)


def _load_tool(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / 'projects' / 'bev' / 'tools' / f'{name}.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_ann_file_cache(tmp_path, bev_synthetic_root, capsys):
    out = tmp_path / 'infos.pkl'
    _load_tool('create_bev_infos').main(['--data-root', str(bev_synthetic_root), '--version', 'v1.0-mini',
                                         '--split', 'mini_train', '--out', str(out)])
    assert '3 samples (12 boxes)' in capsys.readouterr().out
    with open(out, 'rb') as f:
        cache = pickle.load(f)
    assert not any(Path(p).is_absolute() for p in cache['data_list'][0]['img_paths'])  # relocatable
    cached = NuScenesBEVDataset(str(bev_synthetic_root), version='v1.0-mini', split='mini_train',
                                ann_file=str(out))
    direct = NuScenesBEVDataset(str(bev_synthetic_root), version='v1.0-mini', split='mini_train')
    for i in range(len(direct)):
        a, b = cached.get_data_info(i), direct.get_data_info(i)
        assert a['img_paths'] == b['img_paths']
        np.testing.assert_array_equal(a['gt_polygons'], b['gt_polygons'])
    with pytest.raises(ValueError, match='split'):
        NuScenesBEVDataset(str(bev_synthetic_root), version='v1.0-mini', split='mini_val', ann_file=str(out))
    with pytest.raises(FileNotFoundError, match='create_bev_infos'):
        NuScenesBEVDataset(str(bev_synthetic_root), version='v1.0-mini', split='mini_val',
                           ann_file=str(tmp_path / 'missing.pkl'))


def test_custom_split_and_bad_splits(tmp_path):
    root = tmp_path / 'nus'
    make_synthetic_nuscenes(str(root), image_size=(18, 32))
    (root / 'v1.0-mini' / 'splits.json').write_text('{"both": ["scene-0061", "scene-0103"]}')
    assert len(NuScenesBEVDataset(str(root), version='v1.0-mini', split='both')) == 5
    with pytest.raises(ValueError, match='unknown split'):
        NuScenesBEVDataset(str(root), version='v1.0-mini', split='nope')
    with pytest.raises(ValueError, match='v1.0-trainval'):
        NuScenesBEVDataset(str(root), version='v1.0-mini', split='train')
    with pytest.raises(FileNotFoundError, match='data_root'):
        NuScenesBEVDataset(str(tmp_path), version='v1.0-mini', split='mini_train')


def test_data_preprocessor(bev_synthetic_root):
    dataset = NuScenesBEVDataset(str(bev_synthetic_root), version='v1.0-mini', split='mini_train',
                                 pipeline=_val_pipeline())
    batch = pseudo_collate([dataset[0], dataset[1]])
    pre = BEVDataPreprocessor()
    out = pre(batch)
    imgs = out['inputs']['imgs']
    assert imgs.shape == (2, 6, 3, 56, 120) and imgs.dtype == torch.float32
    raw = batch['inputs']['imgs'][1][2, 0, 5, 7].float()
    torch.testing.assert_close(imgs[1, 2, 0, 5, 7], (raw - 123.675) / 58.395)
    assert out['inputs']['cam2img'].shape == (2, 6, 3, 3) and out['inputs']['cam2ego'].shape == (2, 6, 4, 4)
    torch.testing.assert_close(out['inputs']['bev_aug'], torch.eye(4).expand(2, 4, 4))
    torch.testing.assert_close(out['inputs']['cam2img'][0],
                               torch.from_numpy(batch['data_samples'][0].metainfo['cam2img']))
    # an already-stacked batch gives the same result
    stacked = dict(inputs=dict(imgs=torch.stack(batch['inputs']['imgs'])), data_samples=batch['data_samples'])
    torch.testing.assert_close(pre(stacked)['inputs']['imgs'], imgs)
    with pytest.raises(ValueError, match=r'\(B, N, 3, H, W\)'):
        pre(dict(inputs=dict(imgs=torch.zeros(6, 3, 8, 8)), data_samples=batch['data_samples']))
    grid = BEVGrid.build(GRID)
    assert out['data_samples'][0].gt_bev.seg.shape == (1, *grid.shape)


@pytest.mark.parametrize('name', ['nus_bev_synthetic', 'nus_bev', 'nus_bev_lowres', 'nus_bev_mini',
                                  'nus_bev_lowres_mini'])
def test_dataset_configs(name, bev_synthetic_root):
    """Every dataset config loads; the synthetic one (pointed at the fixture) builds loaders that batch."""
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner

    cfg = Config.fromfile(REPO / 'projects' / 'bev' / 'configs' / '_base_' / 'datasets' / f'{name}.py')
    grid = BEVGrid.build(cfg.grid)
    for loader in (cfg.train_dataloader, cfg.val_dataloader):
        assert loader.batch_size == 1 and loader.collate_fn.type == 'pseudo_collate'
        raster = [t for t in loader.dataset.pipeline if t.type == 'RasterizeBEVTargets'][0]
        assert BEVGrid.build(raster.grid) == grid
    assert cfg.train_dataloader.sampler.shuffle and cfg.val_evaluator.type == 'BEVIoUMetric'
    final = {'nus_bev': (224, 480), 'nus_bev_lowres': (224, 476), 'nus_bev_synthetic': (56, 120)}
    assert cfg.val_dataloader.dataset.pipeline[1].final_size == final.get(name.replace('_mini', ''))
    if name != 'nus_bev_synthetic':
        return
    assert grid.shape == (50, 50) and grid.num_heights == 4
    init_default_scope('mmjafar')
    for key, split_len in (('train_dataloader', 3), ('val_dataloader', 2)):
        loader_cfg = cfg[key]
        loader_cfg.dataset.data_root = str(bev_synthetic_root)
        loader = Runner.build_dataloader(loader_cfg, seed=0)
        assert len(loader.dataset) == split_len
        batch = BEVDataPreprocessor()(next(iter(loader)))
        assert batch['inputs']['imgs'].shape == (1, 6, 3, 56, 120)
        assert batch['data_samples'][0].gt_bev.seg.shape == (1, 50, 50)
