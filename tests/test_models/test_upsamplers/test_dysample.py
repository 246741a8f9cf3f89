"""DySample: zero offsets give its base sampling (bilinear x2), offsets move the samples, styles, stacking."""
import pytest
import torch
import torch.nn.functional as F

from mmjafar.models.upsamplers import DySample
from mmjafar.models.upsamplers.dysample import DySampleStage, base_positions, point_sample


def zero_offsets(stage):
    torch.nn.init.zeros_(stage.offset.weight)
    torch.nn.init.zeros_(stage.offset.bias)


@pytest.mark.parametrize('style,dyscope', [('lp', False), ('lp', True), ('pl', False), ('pl', True)])
def test_zero_offsets_equal_bilinear_upsampling(style, dyscope):
    torch.manual_seed(0)
    stage = DySampleStage(16, style=style, groups=4, dyscope=dyscope)
    zero_offsets(stage)
    x = torch.randn(2, 16, 5, 7)
    torch.testing.assert_close(stage(x), F.interpolate(x, scale_factor=2, mode='bilinear', align_corners=False),
                               atol=1e-5, rtol=1e-5)


def test_base_positions_layout():
    pos = base_positions(2, 1).view(2, 2, 2)  # (axis, row, col)
    assert pos[0].tolist() == [[-0.25, 0.25], [-0.25, 0.25]]  # x offset varies along columns
    assert pos[1].tolist() == [[-0.25, -0.25], [0.25, 0.25]]  # y offset varies along rows
    assert base_positions(3, 2).shape == (1, 2 * 2 * 9, 1, 1)


def test_integer_offsets_shift_the_samples():
    """Offsets of +1 pixel in x (on top of the base positions) read the right neighbour's bilinear samples."""
    torch.manual_seed(1)
    x = torch.randn(1, 4, 4, 6)
    offsets = base_positions(2, 2).clone().expand(1, -1, 4, 6).clone()
    offsets[:, :8] += 1.0  # x offsets of both groups
    out = point_sample(x, offsets, 2, 2)
    up = F.interpolate(x, scale_factor=2, mode='bilinear', align_corners=False)
    torch.testing.assert_close(out[..., :-2], up[..., 2:], atol=1e-5, rtol=1e-5)


def test_groups_sample_independently():
    torch.manual_seed(2)
    x = torch.randn(1, 4, 4, 4)
    offsets = base_positions(2, 2).expand(1, -1, 4, 4).clone()
    offsets[:, 4:8] += 1.0  # x offsets of group 1 only
    out = point_sample(x, offsets, 2, 2)
    up = F.interpolate(x, scale_factor=2, mode='bilinear', align_corners=False)
    torch.testing.assert_close(out[:, :2], up[:, :2])
    assert not torch.allclose(out[:, 2:], up[:, 2:])


def test_stack_protocol_state_dict_and_backward():
    torch.manual_seed(3)
    up = DySample(channels=8, num_stages=3)
    assert not up.uses_image and up.in_channels == 8
    assert list(up.state_dict())[:3] == ['up1.init_pos', 'up1.offset.weight', 'up1.offset.bias']
    features = torch.randn(1, 8, 2, 3, requires_grad=True)
    out = up(None, features, (20, 30))
    assert out.shape == (1, 8, 20, 30)
    torch.testing.assert_close(out, F.interpolate(up.up3(up.up2(up.up1(features))), (20, 30), mode='bilinear',
                                                  align_corners=False))
    out.square().mean().backward()
    assert all(p.grad is not None for p in up.parameters())


def test_errors():
    with pytest.raises(ValueError, match='divisible by groups'):
        DySample(channels=6, groups=4)
    with pytest.raises(ValueError, match='style'):
        DySample(channels=8, style='xy')
    with pytest.raises(ValueError, match='offset conv has shape') as err:
        DySample(channels=16).load_state_dict(DySample(channels=8).state_dict())
    assert '\n' not in str(err.value)
