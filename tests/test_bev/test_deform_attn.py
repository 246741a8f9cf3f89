"""The deformable attention core of BEVFormer: PyTorch path against mmcv's reference and kernel, the ``impl``
choice (kernel only where it can run), the sampler's init."""
import pytest
import torch

from projects.bev.bev.models.deform_attn import (DeformableSampler, _mmcv_kernel, kernel_im2col_step,
                                                 multi_scale_deformable_attn)


# --------------------------------------------------------------------------------------------- deformable core
def _random_attention_inputs(dtype=torch.float64, device='cpu'):
    gen = torch.Generator().manual_seed(0)
    shapes = torch.tensor([[6, 9], [3, 5], [1, 2]])
    num_values = int(shapes.prod(1).sum())
    value = torch.randn(2, num_values, 4, 8, generator=gen, dtype=dtype)
    # locations partly outside [0, 1] to exercise the zero padding
    locations = torch.rand(2, 7, 4, 3, 5, 2, generator=gen, dtype=dtype) * 1.4 - 0.2
    weights = torch.rand(2, 7, 4, 3, 5, generator=gen, dtype=dtype).softmax(-1)
    return [t.to(device) for t in (value, shapes, locations, weights)]


def test_core_matches_mmcv_pytorch_reference():
    from mmcv.ops.multi_scale_deform_attn import multi_scale_deformable_attn_pytorch
    value, shapes, locations, weights = _random_attention_inputs()
    ours = multi_scale_deformable_attn(value, shapes, locations, weights)
    ref = multi_scale_deformable_attn_pytorch(value, shapes, locations, weights)
    assert ours.shape == (2, 7, 32)
    torch.testing.assert_close(ours, ref, rtol=0, atol=1e-12)


@pytest.mark.skipif(not torch.cuda.is_available() or _mmcv_kernel() is None,
                    reason='needs CUDA and mmcv built with CUDA')
def test_core_matches_mmcv_cuda_kernel():
    value, shapes, locations, weights = _random_attention_inputs(torch.float32, 'cuda')
    for tensor in (value, locations, weights):
        tensor.requires_grad_(True)
    kernel = multi_scale_deformable_attn(value, shapes, locations, weights, impl='mmcv')
    grads_kernel = torch.autograd.grad(kernel.square().sum(), (value, locations, weights))
    torch_path = multi_scale_deformable_attn(value, shapes, locations, weights, impl='torch')
    grads_torch = torch.autograd.grad(torch_path.square().sum(), (value, locations, weights))
    torch.testing.assert_close(kernel, torch_path, rtol=1e-4, atol=1e-5)
    for a, b in zip(grads_kernel, grads_torch):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-4)


def test_core_rejects_bad_inputs():
    value, shapes, locations, weights = _random_attention_inputs()
    with pytest.raises(ValueError, match='cover'):
        multi_scale_deformable_attn(value[:, 1:], shapes, locations, weights)
    with pytest.raises(RuntimeError, match=r"multi_scale_deformable_attn\(impl='mmcv'\): mmcv.ms_deform_attn runs "
                       r"on \('cuda',\) tensors, not cpu"):
        multi_scale_deformable_attn(value, shapes, locations, weights, impl='mmcv')  # CPU tensors
    with pytest.raises(ValueError, match=r"DeformableSampler: impl must be one of \('auto', 'torch', 'reference', "
                       r"'mmcv'\), got 'natten'"):
        DeformableSampler(impl='natten')


def test_kernel_taken_only_where_it_can_run(monkeypatch):
    """mmcv's kernel is called exactly when it supports the tensors (capability faked for CPU float32); it gets
    float32 inputs whatever the caller's dtype, and an explicit impl='mmcv' explains a refusal."""
    import mmjafar.models.layers.device_kernels as device_kernels
    import projects.bev.bev.models.deform_attn as deform_attn
    value, shapes, locations, weights = _random_attention_inputs(torch.float64)
    exact = multi_scale_deformable_attn(value, shapes, locations, weights)
    calls = []

    class FakeKernel:
        @staticmethod
        def apply(value, shapes, starts, locations, weights, step):
            calls.append((value.dtype, locations.dtype, weights.dtype, step))
            return deform_attn.deformable_attn_pytorch(value, shapes.tolist(), locations, weights)

    monkeypatch.setattr(deform_attn, '_mmcv_kernel', lambda: FakeKernel)
    assert torch.equal(multi_scale_deformable_attn(value, shapes, locations, weights), exact) and not calls
    spec = device_kernels.KernelSpec(('cpu', ), (torch.float32, ), lambda: None)
    monkeypatch.setitem(device_kernels.KERNELS, 'mmcv.ms_deform_attn', spec)
    out = multi_scale_deformable_attn(value, shapes, locations, weights, im2col_step=64)
    assert calls == [(torch.float32, torch.float32, torch.float32, 2)] and out.dtype == torch.float64
    torch.testing.assert_close(out, exact, atol=1e-5, rtol=1e-5)
    multi_scale_deformable_attn(value, shapes, locations, weights, impl='torch')
    assert len(calls) == 1
    monkeypatch.setitem(device_kernels.KERNELS, 'mmcv.ms_deform_attn', device_kernels.KernelSpec(
        ('cpu', ), (torch.float32, ), lambda: 'mmcv was compiled without CUDA'))
    assert torch.equal(multi_scale_deformable_attn(value, shapes, locations, weights), exact) and len(calls) == 1
    with pytest.raises(RuntimeError, match="compiled without CUDA; use impl='torch'"):
        multi_scale_deformable_attn(value, shapes, locations, weights, impl='mmcv')


def test_kernel_im2col_step_divides_batch():
    assert [kernel_im2col_step(b, 64) for b in (1, 6, 64, 72, 130)] == [1, 6, 64, 36, 26]


def test_sampler_init_circle_and_uniform_weights():
    sampler = DeformableSampler(embed_dims=16, num_heads=4, num_levels=1, num_points=3)
    bias = sampler.sampling_offsets.bias.view(4, 1, 3, 2)
    # head h points along angle 2*pi*h/4 scaled to unit max-norm, point p at (p + 1) cells
    directions = torch.tensor([[1., 0.], [0., 1.], [-1., 0.], [0., -1.]])
    expected = directions[:, None, None, :] * torch.tensor([1., 2., 3.]).view(1, 1, 3, 1)
    torch.testing.assert_close(bias, expected, atol=1e-6, rtol=0)
    assert not sampler.sampling_offsets.weight.any()
    assert not sampler.attention_weights.weight.any() and not sampler.attention_weights.bias.any()
    assert not sampler.value_proj.bias.any() and sampler.value_proj.weight.std() > 0
