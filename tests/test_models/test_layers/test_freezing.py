"""One freeze helper: frozen at construction (subclass parameters included), through train() and init_weights()."""
import pytest
from torch import nn

from mmjafar.models import FeatureUpsamplerNeck
from mmjafar.models.layers import FreezableMixin, freeze
from mmjafar.models.upsamplers import JAFAR, JBUStack


class _Extended(JBUStack):
    """A subclass that registers parameters after its parent's __init__ (frozen too)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(feat_dim=8, **kwargs)
        self.extra = nn.Conv2d(8, 8, 1)


def _frozen(module: nn.Module) -> bool:
    return not module.training and not any(p.requires_grad for p in module.parameters())


def test_frozen_upsampler_stays_frozen():
    up = _Extended(frozen=True)
    assert _frozen(up)
    up.train()
    up.init_weights()
    assert _frozen(up)
    assert not _Extended().frozen and all(p.requires_grad for p in _Extended().parameters())


def test_freeze_sets_the_flag_and_parents_keep_it():
    up = JAFAR(v_dim=8, qk_dim=16, num_heads=2)
    parent = nn.ModuleDict(dict(up=up, head=nn.Linear(2, 2)))
    assert freeze(up) is up and up.frozen
    parent.train()
    assert _frozen(up) and parent['head'].training
    plain = freeze(nn.Sequential(nn.Linear(2, 2)))  # no flag: gradients off, mode follows later train() calls
    assert _frozen(plain) and not hasattr(plain, 'frozen')


def test_neck_freezes_its_upsampler_only():
    neck = FeatureUpsamplerNeck(dict(type='JBUStack', feat_dim=8), out_channels=4, frozen=True)
    neck.train()
    assert _frozen(neck.upsampler) and neck.upsampler.frozen
    assert neck.training and all(p.requires_grad for p in neck.projections.parameters())


def test_misspelt_argument_fails_naming_it():
    with pytest.raises(TypeError, match=r"JAFAR: unexpected argument\(s\) \['v_dimm'\]"):
        JAFAR(v_dimm=8)
    with pytest.raises(TypeError, match='feat_dims'):
        JBUStack(feat_dims=8)
    assert JBUStack(feat_dim=8).in_channels == 8 and JAFAR(v_dim=8, qk_dim=16, num_heads=2).in_channels == 8
    with pytest.raises(AttributeError, match='follows feat_dim'):
        JBUStack(feat_dim=8).in_channels = 4


class _EvalOnly(FreezableMixin, nn.Module):
    """A plain module that never trains (as the evaluation-only models)."""

    frozen = True

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(2, 2)


def test_class_level_frozen_plain_module():
    module = _EvalOnly()
    assert _frozen(module)
    module.train()
    module.init_weights()  # no init_weights of its own above the mixin: nothing to call
    assert _frozen(module)
