"""CARAFE: kernels sum to one, torch reassembly vs the op's semantics (and mmcv's op where it runs), stacking."""
import pytest
import torch
import torch.nn.functional as F
from mmengine.registry import MODELS

from mmjafar.models.layers.device_kernels import mmcv_cuda_ops_missing
from mmjafar.models.upsamplers import CARAFE
from mmjafar.models.upsamplers.carafe import CARAFEStage
from tests.test_models.test_layers.test_local_window import reference_weighted_sum


def test_kernels_sum_to_one_per_group():
    torch.manual_seed(0)
    stage = CARAFEStage(8, up_kernel=3, up_group=2)
    torch.nn.init.normal_(stage.content_encoder.weight, std=0.5)
    kernels = stage.kernels(torch.randn(2, 8, 3, 4))
    assert kernels.shape == (2, 2 * 9, 6, 8)
    torch.testing.assert_close(kernels.view(2, 2, 9, 6, 8).sum(2), torch.ones(2, 2, 6, 8))
    assert kernels.max() > 0.3  # not uniform


def test_reassembly_matches_op_semantics():
    """Zero padding, row-major taps, contiguous channel groups (mmcv's CARAFE kernel, written as loops)."""
    torch.manual_seed(1)
    stage = CARAFEStage(4, up_kernel=3, up_group=2, impl='torch')
    torch.nn.init.normal_(stage.content_encoder.weight, std=0.5)
    x = torch.randn(1, 4, 3, 3)
    kernels = stage.kernels(x)
    torch.testing.assert_close(stage(x).double(), reference_weighted_sum(kernels, x, 3), atol=1e-5, rtol=1e-5)


def test_uniform_kernels_average_the_window():
    """With a zero content encoder every kernel is uniform: a k x k box filter (zeros outside), nearest x2."""
    torch.manual_seed(2)
    stage = CARAFEStage(6, up_kernel=5)
    torch.nn.init.zeros_(stage.content_encoder.weight)
    x = torch.randn(2, 6, 5, 4)
    box = F.avg_pool2d(x, 5, stride=1, padding=2, count_include_pad=True)
    torch.testing.assert_close(stage(x), F.interpolate(box, scale_factor=2, mode='nearest'))


@pytest.mark.skipif(not torch.cuda.is_available() or mmcv_cuda_ops_missing() is not None,
                    reason="mmcv's CARAFE op runs on CUDA with mmcv built with CUDA only; the torch path is checked "
                           "against the op's semantics above")
def test_torch_path_equals_mmcv_op():
    torch.manual_seed(3)
    stage = CARAFEStage(16, up_kernel=5, up_group=2).cuda()
    x = torch.randn(2, 16, 7, 9, device='cuda')
    kernels = stage.kernels(x)
    stage.impl = 'torch'
    ours = stage.reassemble(x, kernels)
    stage.impl = 'mmcv'
    theirs = stage.reassemble(x, kernels)
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-5)


def test_mmcv_impl_refused_on_cpu():
    with pytest.raises(RuntimeError, match=r"CARAFE\(impl='mmcv'\): mmcv.carafe runs on \('cuda',\) tensors, not cpu"):
        CARAFEStage(4, impl='mmcv')(torch.randn(1, 4, 3, 3))
    with pytest.raises(ValueError, match='impl'):
        CARAFEStage(4, impl='cuda')


def test_stack_protocol_and_registry():
    torch.manual_seed(4)
    up = MODELS.build(dict(type='CARAFE', channels=8, num_stages=2, up_kernel=3))
    assert not up.uses_image and up.in_channels == 8
    x = torch.randn(1, 8, 3, 3)
    out = up(None, x, (10, 9))
    expected = F.interpolate(up.up2(up.up1(x)), (10, 9), mode='bilinear', align_corners=False)
    torch.testing.assert_close(out, expected)
    assert list(up.state_dict()) == ['up1.channel_compressor.weight', 'up1.channel_compressor.bias',
                                     'up1.content_encoder.weight', 'up1.content_encoder.bias',
                                     'up2.channel_compressor.weight', 'up2.channel_compressor.bias',
                                     'up2.content_encoder.weight', 'up2.content_encoder.bias']


def test_checkpoint_errors_and_backward():
    up = CARAFE(channels=8, num_stages=1, up_kernel=3)
    with pytest.raises(ValueError, match='channels=8 but this module was built with channels=16') as err:
        CARAFE(channels=16, num_stages=1, up_kernel=3).load_state_dict(up.state_dict())
    assert '\n' not in str(err.value)
    features = torch.randn(1, 8, 3, 3, requires_grad=True)
    up(None, features, (6, 6)).square().mean().backward()
    assert features.grad is not None and all(p.grad is not None for p in up.parameters())
