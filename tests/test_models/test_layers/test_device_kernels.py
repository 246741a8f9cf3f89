"""Optional compiled kernels run only where they support the device and dtype (capability faked on CPU)."""
import types

import pytest
import torch

import mmjafar.models.layers.device_kernels as device_kernels
import mmjafar.models.layers.neighborhood_attention as na
import mmjafar.models.upsamplers.carafe as carafe_module
from mmjafar.models.layers.device_kernels import KernelSpec, kernel_unsupported, mmcv_cuda_ops_missing
from mmjafar.models.upsamplers.carafe import CARAFEStage


def fake_capability(monkeypatch, kernel, dtypes, missing=None):
    """Pretend ``kernel`` runs on CPU tensors of ``dtypes`` (and is installed unless ``missing`` says why not)."""
    monkeypatch.setitem(device_kernels.KERNELS, kernel, KernelSpec(('cpu', ), dtypes, lambda: missing))


class Recorder:
    """Stands in for a compiled op: records its calls and answers with the given function."""

    def __init__(self, fn):
        self.fn, self.calls = fn, []

    def __call__(self, *args, **kwargs):
        self.calls.append(args)
        return self.fn(*args, **kwargs)


def test_real_capabilities_on_cpu():
    x = torch.zeros(2)
    for kernel in device_kernels.KERNELS:
        assert 'not cpu' in kernel_unsupported(kernel, x)
    with pytest.raises(RuntimeError, match=r"CARAFE\(impl='mmcv'\): mmcv.carafe runs on \('cuda',\) tensors, not cpu"):
        CARAFEStage(4, impl='mmcv')(torch.randn(1, 4, 3, 3))


@pytest.mark.parametrize('version, expected', [('not available', 'compiled without CUDA'), ('12.1', None),
                                               (ImportError('libcudart.so.12'), 'not importable')])
def test_mmcv_build_check(monkeypatch, version, expected):
    """A GPU machine with the CPU build of mmcv must not call its CUDA ops (the issue's CARAFE crash)."""
    def import_module(name):
        if isinstance(version, Exception):
            raise version
        return types.SimpleNamespace(get_compiling_cuda_version=lambda: version)

    monkeypatch.setattr(device_kernels.importlib, 'import_module', import_module)
    reason = mmcv_cuda_ops_missing.__wrapped__()
    assert reason is None if expected is None else expected in reason


def test_carafe_takes_the_kernel_only_where_it_can_run(monkeypatch):
    torch.manual_seed(0)
    stage = CARAFEStage(8, up_kernel=3, up_group=2)
    x = torch.randn(1, 8, 4, 5)
    exact = stage(x)
    op = Recorder(lambda feats, kernels, k, g, s: carafe_module.local_weighted_sum(kernels, feats, k, 'zeros'))
    monkeypatch.setattr(carafe_module, '_mmcv_carafe', lambda: op)
    fake_capability(monkeypatch, 'mmcv.carafe', (torch.float32, ))
    torch.testing.assert_close(stage(x), exact)  # auto, supported: the kernel runs
    assert len(op.calls) == 1 and op.calls[0][0].dtype == op.calls[0][1].dtype == torch.float32
    stage.double()
    assert stage(x.double()).dtype == torch.float64 and len(op.calls) == 1  # unsupported dtype: PyTorch path
    stage.impl = 'mmcv'
    with pytest.raises(RuntimeError, match=r"CARAFE\(impl='mmcv'\): mmcv.carafe supports \['float32'\], not "
                                           r"torch.float64; use impl='torch'"):
        stage(x.double())
    stage.float().impl = 'torch'
    stage(x)
    assert len(op.calls) == 1  # never with impl='torch'
    # installed but built without CUDA: auto falls back, explicit mmcv explains
    fake_capability(monkeypatch, 'mmcv.carafe', (torch.float32, ), missing='mmcv was compiled without CUDA')
    stage.impl = 'auto'
    torch.testing.assert_close(stage(x), exact)
    assert len(op.calls) == 1
    stage.impl = 'mmcv'
    with pytest.raises(RuntimeError, match='compiled without CUDA'):
        stage(x)


def test_natten_taken_only_where_it_can_run(monkeypatch):
    torch.manual_seed(0)
    q, k, v = torch.randn(1, 2, 12, 10, 4), torch.randn(1, 2, 6, 5, 4), torch.randn(1, 2, 6, 5, 3)
    args = (q, k, v, (3, 3), (2, 2), 0.5)
    exact = na.neighborhood_attention_2d(*args, impl='torch')
    op = Recorder(lambda q, k, v, kernel_size, dilation, scale: na.neighborhood_attention_2d(
        q, k, v, kernel_size, dilation, scale, impl='torch'))
    monkeypatch.setattr(na, '_natten_attention', op)
    assert torch.equal(na.neighborhood_attention_2d(*args), exact) and not op.calls  # real capability: no CPU
    fake_capability(monkeypatch, 'natten', (torch.float32, ))
    torch.testing.assert_close(na.neighborhood_attention_2d(*args), exact)
    assert len(op.calls) == 1
    double = [t.double() if torch.is_tensor(t) else t for t in args]
    na.neighborhood_attention_2d(*double)  # float64: not a NATTEN dtype
    assert len(op.calls) == 1
    with pytest.raises(RuntimeError, match=r"neighborhood_attention_2d\(impl='natten'\): natten supports"):
        na.neighborhood_attention_2d(*double, impl='natten')
    fake_capability(monkeypatch, 'natten', (torch.float32, ), missing='the optional natten package is not importable')
    with pytest.raises(RuntimeError, match='natten package is not importable'):
        na.neighborhood_attention_2d(*args, impl='natten')
