from unittest import mock

import numpy as np
import pytest
import torch
from PIL import Image

import mmjafar  # noqa: F401
from mmjafar.engine import HeldOutUpsamplingHook, feature_errors, format_errors_table, heldout_errors
from mmjafar.registry import MODELS

from .pretrain_utils import TINY_BACKBONE, TINY_UPSAMPLER


def test_feature_errors_known_values():
    target = torch.zeros(1, 2, 2, 2)
    target[:, 0] = 1.0
    pred = torch.zeros(1, 2, 2, 2)
    pred[:, 1] = 1.0  # orthogonal everywhere, distance sqrt(2)
    cos_err, l2 = feature_errors(pred, target)
    torch.testing.assert_close(cos_err, torch.tensor([1.0]))
    torch.testing.assert_close(l2, torch.tensor([2 ** 0.5]))
    cos_err, l2 = feature_errors(target, target)
    assert float(cos_err) == pytest.approx(0, abs=1e-6) and float(l2) == 0


def test_table_reports_improvement_over_bilinear():
    errors = dict(upsampler={2: dict(cos=0.1, l2=4.0)}, bilinear={2: dict(cos=0.2, l2=5.0)},
                  nearest={2: dict(cos=0.3, l2=6.0)})
    table = format_errors_table(errors)
    assert 'JAFAR' in table and 'bilinear' in table and 'nearest' in table
    assert '2x: 1-cos +50.0%, L2 +20.0%' in table


def test_heldout_errors_and_hook_outputs(tmp_path):
    torch.manual_seed(0)
    model = MODELS.build(dict(type='UpsamplerPretrainer', backbone=TINY_BACKBONE, upsampler=TINY_UPSAMPLER))
    images = torch.randn(3, 3, 128, 128)
    errors = heldout_errors(model, images, scales=(2, 4), batch_size=2)
    assert set(errors) == {'upsampler', 'bilinear', 'nearest'} and set(errors['bilinear']) == {2, 4}
    # bilinear at 2x recomputed by hand
    target = model.extract(images)
    low = model.extract(torch.nn.functional.interpolate(images, size=(64, 64), mode='bilinear'))
    up = torch.nn.functional.interpolate(low, size=target.shape[-2:], mode='bilinear')
    cos_err, l2 = feature_errors(up, target)
    assert errors['bilinear'][2]['cos'] == pytest.approx(float(cos_err.mean()), rel=1e-5)
    assert errors['bilinear'][2]['l2'] == pytest.approx(float(l2.mean()), rel=1e-5)
    assert model.training  # mode restored

    folder = tmp_path / 'held'
    folder.mkdir()
    for i in range(2):
        Image.fromarray(np.random.default_rng(i).integers(0, 256, (70, 90, 3), dtype=np.uint8)).save(folder / f'{i}.png')
    hook = HeldOutUpsamplingHook(dataset=dict(type='ImageFolderDataset', data_root=str(folder), img_size=64),
                                 scales=(2, ), pca_size=64)
    runner = mock.MagicMock(model=model, work_dir=str(tmp_path), iter=5)
    hook.after_train(runner)
    logged = ' '.join(str(c.args[0]) for c in runner.logger.info.call_args_list)
    assert 'RANDOM-INIT BACKBONE' in logged and 'JAFAR' in logged and 'error reduction vs bilinear' in logged
    assert (tmp_path / 'heldout_errors.json').is_file()
    png = Image.open(tmp_path / 'heldout_pca.png')
    assert png.size[0] == 4 * 64 + 3 * 4 and png.size[1] > 64
    scalars = runner.visualizer.add_scalars.call_args.args[0]
    assert 'heldout/upsampler_cos_2x' in scalars and 'heldout/bilinear_l2_2x' in scalars
