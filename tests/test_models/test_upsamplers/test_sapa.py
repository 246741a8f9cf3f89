"""SAPA: kernels sum to one, loop reference of the CUDA kernels, uniform affiliation = box filter, stacking."""
import pytest
import torch
import torch.nn.functional as F

from mmjafar.models.upsamplers import SAPA
from mmjafar.models.upsamplers.sapa import SAPAStage
from tests.test_models.test_layers.test_local_window import reference_similarity, reference_weighted_sum


def test_kernels_sum_to_one_including_border_taps():
    torch.manual_seed(0)
    stage = SAPAStage(8)
    kernels = stage.kernels(torch.randn(2, 8, 4, 5), torch.randn(2, 3, 8, 10))
    assert kernels.shape == (2, 25, 8, 10)
    torch.testing.assert_close(kernels.sum(1), torch.ones(2, 8, 10))


def test_matches_reference_kernels():
    """Out-of-map taps: logit 0 in the softmax, value 0 in the sum (the official CUDA kernels)."""
    torch.manual_seed(1)
    stage = SAPAStage(4, kernel_size=3, embedding_dim=6)
    torch.nn.init.normal_(stage.q.weight)
    torch.nn.init.normal_(stage.k.weight)
    guidance, x = torch.randn(1, 3, 6, 4), torch.randn(1, 4, 3, 2)
    q = stage.q(stage.norm_y(guidance.permute(0, 2, 3, 1))).permute(0, 3, 1, 2)
    k = stage.k(stage.norm_x(x.permute(0, 2, 3, 1))).permute(0, 3, 1, 2)
    weights = torch.softmax(reference_similarity(q, k, 3), dim=1)
    torch.testing.assert_close(stage(x, guidance).double(), reference_weighted_sum(weights, x.double(), 3),
                               atol=1e-5, rtol=1e-5)


def test_uniform_affiliation_is_a_box_filter():
    torch.manual_seed(2)
    stage = SAPAStage(6)
    torch.nn.init.zeros_(stage.q.weight)
    torch.nn.init.zeros_(stage.q.bias)
    x = torch.randn(1, 6, 4, 5)
    out = stage(x, torch.randn(1, 3, 8, 10))
    box = F.avg_pool2d(x, 5, stride=1, padding=2, count_include_pad=True)
    torch.testing.assert_close(out, F.interpolate(box, scale_factor=2, mode='nearest'))


def test_guided_stack_protocol_and_backward():
    torch.manual_seed(3)
    up = SAPA(channels=8, num_stages=2)
    assert up.uses_image and up.in_channels == 8
    image = torch.randn(1, 3, 40, 40)
    features = torch.randn(1, 8, 3, 3, requires_grad=True)
    out = up(image, features, (10, 14))
    s2 = up.up1(features, F.adaptive_avg_pool2d(image, (6, 6)))
    s4 = up.up2(s2, F.adaptive_avg_pool2d(image, (12, 12)))
    torch.testing.assert_close(out, F.interpolate(s4, (10, 14), mode='bilinear', align_corners=False))
    out.square().mean().backward()
    assert all(p.grad is not None for p in up.parameters())
    assert list(up.up1.state_dict()) == ['norm_y.weight', 'norm_y.bias', 'norm_x.weight', 'norm_x.bias',
                                         'q.weight', 'q.bias', 'k.weight', 'k.bias']


def test_errors():
    with pytest.raises(ValueError, match='needs the guidance image'):
        SAPA(channels=8)(None, torch.randn(1, 8, 2, 2), (8, 8))
    with pytest.raises(ValueError, match='channels=8 but this module was built with channels=16') as err:
        SAPA(channels=16).load_state_dict(SAPA(channels=8).state_dict())
    assert '\n' not in str(err.value)
