"""JAFAR for the DINOv3 backbones: the released checkpoints' layout (JAFAR's keys, each with its own v_dim) loads
strictly by path, a checkpoint of another width fails in one line, and backbone + JAFAR run end to end."""
import warnings

import pytest
import torch
from mmengine.runner import load_checkpoint

from mmjafar.models.backbones import TimmBackbone
from mmjafar.models.upsamplers import JAFAR

# released JAFAR weights per DINOv3 backbone: timm name -> feature width (v_dim)
DINOV3 = {'vit_small_patch16_dinov3.lvd1689m': 384, 'vit_small_plus_patch16_dinov3.lvd1689m': 384,
          'vit_base_patch16_dinov3.lvd1689m': 768, 'vit_large_patch16_dinov3.lvd1689m': 1024}


def released_layout(v_dim: int, seed: int):
    """A state dict in the official layout (the official key names are JAFAR's own) with random values."""
    gen = torch.Generator().manual_seed(seed)
    return {k: torch.randn(v.shape, generator=gen) if v.is_floating_point() else v
            for k, v in JAFAR(v_dim=v_dim).state_dict().items()}


@pytest.mark.parametrize('name', sorted(DINOV3))
def test_released_layout_loads_strictly(tmp_path, name):
    v_dim = DINOV3[name]
    state = released_layout(v_dim, seed=v_dim)
    bare, wrapped = tmp_path / f'{name}.pth', tmp_path / f'{name}_train.pth'
    torch.save(state, bare)
    torch.save({'jafar': state, 'step': 100_000}, wrapped)
    for path in (bare, wrapped):
        model = JAFAR(v_dim=v_dim, init_cfg=dict(type='Pretrained', checkpoint=str(path)))
        model.init_weights()
        for key, value in model.state_dict().items():
            assert torch.equal(value, state[key]), key
        other = JAFAR(v_dim=v_dim)
        load_checkpoint(other, str(path), strict=True, logger='silent')
        assert torch.equal(other.key_features_encoder[0].weight, state['key_features_encoder.0.weight'])


def test_other_width_fails_in_one_line():
    with pytest.raises(ValueError, match='v_dim=768 but this module was built with v_dim=384') as err:
        JAFAR(v_dim=384).load_state_dict(released_layout(768, seed=0))
    assert '\n' not in str(err.value)


@pytest.mark.parametrize('name', ['vit_small_patch16_dinov3.lvd1689m', 'vit_base_patch16_dinov3.lvd1689m'])
def test_backbone_and_jafar_end_to_end(name):
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        backbone = TimmBackbone(name, pretrained=False, random_init=True, model_kwargs=dict(depth=1))
    assert backbone.embed_dim == DINOV3[name] and backbone.patch_size == 16
    jafar = JAFAR(v_dim=backbone.embed_dim).eval()
    jafar.load_state_dict(released_layout(backbone.embed_dim, seed=1))
    image = torch.randn(1, 3, 64, 48)
    with torch.no_grad():
        out = jafar(backbone(image))
    assert tuple(out[0].shape) == (1, DINOV3[name], 64, 48) and torch.isfinite(out[0]).all()
