import random

import numpy as np
import pytest
import torch
from PIL import Image

from mmjafar.datasets import ImageFolderDataset, SkimageDataset, square_crop_to_tensor
from mmjafar.registry import DATASETS


def _save(path, size=(40, 60), mode='RGB', seed=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    shape = (size[0], size[1], 3) if mode == 'RGB' else size
    Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode=mode).save(path)


def test_recursive_imagenet_layout_sorted_and_square(tmp_path):
    _save(tmp_path / 'n02' / 'b.JPEG')
    _save(tmp_path / 'n01' / 'deeper' / 'a.png', mode='L')
    _save(tmp_path / 'n01' / 'c.jpg', size=(80, 30))
    (tmp_path / 'n01' / 'notes.txt').write_text('not an image')
    ds = DATASETS.build(dict(type='ImageFolderDataset', data_root=str(tmp_path), img_size=28))
    assert [p.split(str(tmp_path))[1] for p in ds.files] == ['/n01/c.jpg', '/n01/deeper/a.png', '/n02/b.JPEG']
    for i in range(len(ds)):
        x = ds[i]['inputs']
        assert x.dtype == torch.uint8 and x.shape == (3, 28, 28)
    gray = ds[1]['inputs']
    assert torch.equal(gray[0], gray[1]) and torch.equal(gray[1], gray[2])  # grayscale -> RGB


def test_corrupt_files_are_skipped_and_counted(tmp_path, caplog):
    _save(tmp_path / 'good.png')
    (tmp_path / 'broken.jpg').write_bytes(b'\xff\xd8 definitely not a jpeg')
    (tmp_path / 'empty.png').write_bytes(b'')
    ds = ImageFolderDataset(str(tmp_path), img_size=16)
    assert len(ds) == 1 and len(ds.skipped_at_start) == 2
    # without the start-up check the broken file is replaced by the next readable one at load time
    lazy = ImageFolderDataset(str(tmp_path), img_size=16, verify='none')
    assert len(lazy) == 3
    idx = [i for i, f in enumerate(lazy.files) if f.endswith('broken.jpg')][0]
    assert lazy[idx]['inputs'].shape == (3, 16, 16)
    assert any(p.endswith('broken.jpg') for p in lazy.skipped_at_load)


def test_bad_folders_give_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match='is not a folder'):
        ImageFolderDataset(str(tmp_path / 'missing'))
    (tmp_path / 'empty').mkdir()
    (tmp_path / 'empty' / 'readme.md').write_text('x')
    with pytest.raises(FileNotFoundError, match='no image files'):
        ImageFolderDataset(str(tmp_path / 'empty'))
    (tmp_path / 'bad').mkdir()
    (tmp_path / 'bad' / 'x.png').write_bytes(b'garbage')
    with pytest.raises(RuntimeError, match='unreadable'):
        ImageFolderDataset(str(tmp_path / 'bad'))
    with pytest.raises(ValueError, match='verify'):
        ImageFolderDataset(str(tmp_path / 'bad'), verify='yes')
    with pytest.raises(ValueError, match='random_crop_scale'):
        ImageFolderDataset(str(tmp_path / 'bad'), random_crop_scale=(0.5, 1.5))


def test_square_crop_center_and_random():
    img = Image.fromarray(np.arange(60 * 90 * 3, dtype=np.uint32).reshape(60, 90, 3).astype(np.uint8))
    center = square_crop_to_tensor(img, 60)
    assert torch.equal(center, torch.from_numpy(np.asarray(img)[:, 15:75]).permute(2, 0, 1))
    a = square_crop_to_tensor(img, 32, (0.2, 0.5), random.Random(3))
    b = square_crop_to_tensor(img, 32, (0.2, 0.5), random.Random(3))
    c = square_crop_to_tensor(img, 32, (0.2, 0.5), random.Random(4))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_skimage_splits_are_disjoint():
    train = SkimageDataset('train', img_size=28)
    held = SkimageDataset('heldout', img_size=28, repeat=2)
    assert not set(train.names) & set(held.names)
    assert len(held) == 2 * len(held.names) and held[0]['inputs'].shape == (3, 28, 28)
    with pytest.raises(ValueError, match='no image'):
        SkimageDataset(names=['not_an_image'])
