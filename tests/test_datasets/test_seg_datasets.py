"""Probe datasets (COCO-Stuff 27, Cityscapes 27) and the probe pipeline of the linear-probe configs."""
import os

import numpy as np
import pytest
from PIL import Image

from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmseg.registry import DATASETS

from mmjafar.datasets import EvalAtCurrentSize
from mmjafar.datasets.seg_datasets import COCOSTUFF27_CLASSES, cocostuff27_label_map
from mmjafar.testing import make_ade20k

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LOAD = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations')]


@pytest.fixture(autouse=True)
def mmseg_scope():
    with DefaultScope.overwrite_default_scope('mmseg'):
        yield


def write_pair(img_path, ann_path, values, size=(4, 8)):
    os.makedirs(os.path.dirname(img_path), exist_ok=True)
    os.makedirs(os.path.dirname(ann_path), exist_ok=True)
    Image.fromarray(np.zeros((*size, 3), np.uint8)).save(img_path)
    label = np.full(size, values[0], np.uint8)
    label[0, :len(values)] = values
    Image.fromarray(label).save(ann_path)


def test_cocostuff27_maps_fine_ids_to_coarse(tmp_path):
    mapping = cocostuff27_label_map()
    assert sorted(mapping) == list(range(182)) and sorted(set(mapping.values())) == list(range(27))
    root = str(tmp_path)
    # pixel = COCO id - 1: person (1), banner (92), stone (162), wood (182), tv (72), sky-other (157), unlabelled
    write_pair(f'{root}/images/train2017/a.jpg', f'{root}/annotations/train2017/a.png',
               [0, 91, 161, 181, 71, 156, 255])
    ds = DATASETS.build(dict(type='COCOStuff27Dataset', data_root=root, pipeline=LOAD,
                             data_prefix=dict(img_path='images/train2017', seg_map_path='annotations/train2017')))
    seg = ds[0]['gt_seg_map']
    names = [COCOSTUFF27_CLASSES[i] for i in seg[0, :6]]
    assert names == ['person', 'textile', 'solid', 'solid', 'electronic', 'sky'] and seg[0, 6] == 255
    with pytest.raises(ValueError, match='fixed class set'):
        DATASETS.build(dict(type='COCOStuff27Dataset', data_root=root, pipeline=LOAD,
                            metainfo=dict(classes=('person', 'sky')),
                            data_prefix=dict(img_path='images/train2017', seg_map_path='annotations/train2017')))


def test_cityscapes27_keeps_every_non_void_class(tmp_path):
    root = str(tmp_path)
    stem = 'aachen_000000_000019'
    write_pair(f'{root}/leftImg8bit/train/aachen/{stem}_leftImg8bit.png',
               f'{root}/gtFine/train/aachen/{stem}_gtFine_labelIds.png', [0, 6, 7, 33, 26, 10, 16])
    ds = DATASETS.build(dict(type='Cityscapes27Dataset', data_root=root, pipeline=LOAD,
                             data_prefix=dict(img_path='leftImg8bit/train', seg_map_path='gtFine/train')))
    assert len(ds.metainfo['classes']) == 27
    assert ds[0]['gt_seg_map'][0, :7].tolist() == [255, 255, 0, 26, 19, 3, 9]  # car=26-7, rail track, tunnel


def test_probe_pipeline_crops_448_and_evaluates_at_the_crop(tmp_path):
    root = str(tmp_path / 'ADEChallengeData2016')
    make_ade20k(root, num_train=1, num_val=1, size=(300, 500))
    cfg = Config.fromfile(os.path.join(REPO, 'configs/_base_/datasets/ade20k_probe-448.py'))
    ds_cfg = cfg.val_dataloader.dataset
    ds_cfg.data_root = root
    sample = DATASETS.build(ds_cfg)[0]
    assert tuple(sample['inputs'].shape) == (3, 448, 448)
    meta = sample['data_samples'].metainfo
    assert meta['ori_shape'] == (448, 448) == tuple(sample['data_samples'].gt_sem_seg.data.shape[-2:])
    labels = set(sample['data_samples'].gt_sem_seg.data.unique().tolist())
    assert labels <= {0, 2, 4, 12, 255}  # ADE ids 1, 3, 5, 13 shifted by reduce_zero_label; "other" ignored
    with pytest.raises(KeyError, match='img_shape'):
        EvalAtCurrentSize()({})


def test_depth_probe_config_runs_on_nyu_layout(tmp_path):
    import torch
    from mmseg.registry import MODELS
    root = tmp_path / 'nyu'
    for split in ('train', 'test'):
        (root / 'images' / split).mkdir(parents=True)
        (root / 'annotations' / split).mkdir(parents=True)
        Image.fromarray(np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(
            root / 'images' / split / 'bedroom_0001.jpg')
        depth_mm = np.full((48, 64), 2500, np.uint16)  # 2.5 m
        Image.fromarray(depth_mm).save(root / 'annotations' / split / 'bedroom_0001.png')
    cfg = Config.fromfile(os.path.join(REPO, 'configs/linear_probe/jafar_vit-s14-dinov2_1xb4-20e_nyu-depth-448x448.py'))
    cfg.train_dataloader.dataset.data_root = str(root)
    sample = DATASETS.build(cfg.train_dataloader.dataset)[0]
    depth = sample['data_samples'].gt_depth_map.data
    assert tuple(sample['inputs'].shape) == (3, 448, 448) and tuple(depth.shape[-2:]) == (448, 448)
    assert torch.allclose(depth, torch.full_like(depth, 2.5))
    cfg.model.backbone.update(pretrained=False, random_init=True, model_kwargs=dict(depth=1))
    cfg.model.neck = dict(type='JAFAR', v_dim=384, qk_dim=16, num_heads=2)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        model = MODELS.build(cfg.model)
    sample['data_samples'].set_metainfo(dict(img_shape=(448, 448), pad_shape=(448, 448)))
    small = torch.nn.functional.interpolate(sample['inputs'][None].float(), size=(56, 56))
    from mmengine.structures import PixelData
    sample['data_samples'].gt_depth_map = PixelData(data=depth[..., :56, :56])
    losses = model.loss(model.data_preprocessor(dict(inputs=[small[0]], data_samples=[sample['data_samples']]),
                                                True)['inputs'], [sample['data_samples']])
    assert set(losses) == {'decode.loss_silog'} and torch.isfinite(losses['decode.loss_silog'])
