"""The one size rule (floor of size x scale, or size / stride), used by upsamplers, necks, pretraining and BEV."""
import pytest
import torch
import torch.nn.functional as F

from mmjafar.models import FeatureUpsamplerNeck
from mmjafar.models.layers import scaled_size, to_size
from mmjafar.models.upsamplers import Bilinear
from mmjafar.structures import GuidedFeatures


@pytest.mark.parametrize('size, scale', [((37, 64), 0.5), ((5, 7), 2.0), ((33, 31), 0.25), ((9, 11), 1.5)])
def test_scale_factor_gives_the_interpolate_size(size, scale):
    expected = tuple(F.interpolate(torch.zeros(1, 1, *size), scale_factor=scale).shape[-2:])
    assert scaled_size(size, scale) == expected


def test_stride_divides_and_floors():
    assert scaled_size((224, 480), stride=8) == (28, 60)
    assert scaled_size((224, 480), stride=4) == (56, 120)
    assert scaled_size((28, 60), stride=8) == (3, 7)  # no rounding up of 3.5 / 7.5
    assert scaled_size((3, 3), stride=8) == (1, 1)  # at least one cell
    with pytest.raises(ValueError, match='exactly one'):
        scaled_size((4, 4), 2.0, stride=2)
    with pytest.raises(ValueError, match='stride must be positive'):
        scaled_size((4, 4), stride=0)


def test_upsampler_and_neck_agree():
    feats = torch.randn(1, 4, 7, 9)
    up = Bilinear(scale_factor=1.5)
    neck = FeatureUpsamplerNeck(dict(type='Bilinear'), scale_factor=1.5)
    assert tuple(up(None, feats).shape[-2:]) == scaled_size((7, 9), 1.5) == (10, 13)
    assert tuple(neck(GuidedFeatures([feats], image=None))[0].shape[-2:]) == (10, 13)
    with pytest.raises(ValueError, match='Bilinear: scale_factor must be positive'):
        Bilinear(scale_factor=0)
    assert to_size(5) == (5, 5)
