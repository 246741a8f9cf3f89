"""Training-free baselines: align_corners conventions, nearest blocks, registry, no image needed."""
import pytest
import torch
import torch.nn.functional as F
from mmengine.registry import MODELS

from mmjafar.models.upsamplers import Bicubic, Bilinear, Nearest


def test_bilinear_align_corners_false_is_half_pixel():
    ramp = torch.arange(4.).view(1, 1, 1, 4).expand(1, 1, 2, 4)
    out = Bilinear()(None, ramp, (2, 8))
    # output column X samples input coordinate (X + 0.5) / 2 - 0.5, clamped to [0, 3]
    expected = ((torch.arange(8.) + 0.5) / 2 - 0.5).clamp(0, 3)
    torch.testing.assert_close(out[0, 0, 0], expected)


def test_bilinear_align_corners_true_keeps_corners():
    torch.manual_seed(0)
    x = torch.randn(1, 5, 3, 4)
    out = Bilinear(align_corners=True)(None, x, (7, 10))
    for r, c in [(0, 0), (0, -1), (-1, 0), (-1, -1)]:
        torch.testing.assert_close(out[..., r, c], x[..., r, c])
    # output X samples X * (w - 1) / (W - 1): column 3 of 10 is exactly input column 1
    torch.testing.assert_close(out[..., ::3, 3], x[..., :, 1])
    assert not torch.allclose(out, Bilinear(align_corners=False)(None, x, (7, 10)))


@pytest.mark.parametrize('align_corners', [False, True])
def test_bicubic_matches_torch_and_overshoots(align_corners):
    step = torch.zeros(1, 1, 1, 8)
    step[..., 4:] = 1
    out = Bicubic(align_corners=align_corners)(None, step, (1, 32))
    torch.testing.assert_close(out, F.interpolate(step, (1, 32), mode='bicubic', align_corners=align_corners))
    assert out.min() < 0 and out.max() > 1  # the a = -0.75 cubic kernel rings; no clamping


@pytest.mark.parametrize('exact', [False, True])
def test_nearest_integer_ratio_copies_blocks(exact):
    torch.manual_seed(1)
    x = torch.randn(2, 3, 4, 5)
    out = Nearest(exact=exact)(None, x, (12, 15))
    assert torch.equal(out, x.repeat_interleave(3, dim=2).repeat_interleave(3, dim=3))


def test_nearest_modes_differ_for_non_integer_ratio():
    x = torch.arange(3.).view(1, 1, 1, 3)
    legacy = Nearest()(None, x, (1, 5))[0, 0, 0]
    exact = Nearest(exact=True)(None, x, (1, 5))[0, 0, 0]
    assert legacy.tolist() == [0, 0, 1, 1, 2]  # floor(X * 3 / 5)
    assert exact.tolist() == [0, 0, 1, 2, 2]  # floor((X + 0.5) * 3 / 5)


def test_image_ignored_and_size_policies():
    x = torch.randn(1, 2, 4, 4)
    image = torch.randn(1, 3, 32, 24)
    up = Bilinear()
    assert not up.uses_image and up.in_channels is None
    assert up(image, x).shape[-2:] == (32, 24)  # default: the image's size
    assert Bilinear(scale_factor=2.5)(None, x).shape[-2:] == (10, 10)
    assert torch.equal(up(None, x, (4, 4)), x)
    with pytest.raises(ValueError, match='no output_size'):
        up(None, x)
    assert len(list(up.parameters())) == 0


@pytest.mark.parametrize('name', ['Bilinear', 'Nearest', 'Bicubic'])
def test_registered(name):
    up = MODELS.build(dict(type=name, output_size=8))
    assert up(None, torch.randn(1, 2, 4, 4)).shape == (1, 2, 8, 8)
