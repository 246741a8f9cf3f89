"""TimmViT: features, frozen mode, weights loading rules, survival of init_weights, clear errors."""
import pytest
import torch
from mmengine.model import BaseModule

from mmjafar.models.backbones import TimmViT
from mmjafar.models.backbones import timm_weights
from mmjafar.registry import MODELS
from mmjafar.structures import GuidedFeatures

DINO_S = 'vit_small_patch14_dinov2.lvd142m'


SHALLOW = dict(depth=2)  # building timm's 12 blocks dominates the run time on CPU


def random_vit(**kwargs) -> TimmViT:
    kwargs.setdefault('model_kwargs', SHALLOW)
    with pytest.warns(UserWarning, match='RANDOM weights'):
        return TimmViT(pretrained=False, random_init=True, **kwargs)


@pytest.fixture(scope='module')
def vit() -> TimmViT:
    torch.manual_seed(0)
    return random_vit(out_indices=(0, -1))


def test_features_match_timm_intermediates(vit):
    x = torch.randn(2, 3, 56, 98)
    feats = vit(x)
    assert isinstance(feats, GuidedFeatures) and feats.image is x
    assert [tuple(f.shape) for f in feats] == [(2, 384, 4, 7)] * 2
    assert (vit.embed_dim, vit.patch_size, vit.num_blocks) == (384, 14, 2)
    ref = vit.model.forward_intermediates(x, indices=[0, 1], norm=True, intermediates_only=True)
    for ours, theirs in zip(feats, ref):
        torch.testing.assert_close(ours, theirs)


def test_register_tokens_removed():
    vit = random_vit(model_name='vit_small_patch14_reg4_dinov2.lvd142m')
    assert vit.model.num_prefix_tokens == 5
    x = torch.randn(1, 3, 42, 28)
    (feat, ) = vit(x)
    ref = vit.model.forward_intermediates(x, indices=[1], norm=True, intermediates_only=True)[0]
    assert feat.shape == (1, 384, 3, 2)
    torch.testing.assert_close(feat, ref)


def test_frozen_keeps_eval_and_no_grad(vit):
    vit.train()
    assert not vit.training and not vit.model.training
    assert not any(p.requires_grad for p in vit.parameters())
    x = torch.randn(1, 3, 28, 28, requires_grad=True)
    assert not vit(x)[0].requires_grad

    trainable = random_vit(frozen=False, out_indices=(0, ))
    trainable.train()
    assert trainable.training and trainable.model.blocks[0].training
    trainable(torch.randn(1, 3, 28, 28))[0].sum().backward()
    assert trainable.model.patch_embed.proj.weight.grad is not None


def test_strided_and_large_image_baselines():
    x = torch.randn(1, 3, 56, 84)
    strided = random_vit(patch_stride=7)
    assert strided(x)[0].shape[-2:] == (7, 11) == strided.feature_grid(56, 84)
    large = random_vit(image_scale=2.0)
    assert large(x)[0].shape[-2:] == (8, 12) == large.feature_grid(56, 84)
    assert large(x).image.shape == x.shape  # the guidance stays the original input
    back = random_vit(image_scale=2.0, resize_output='grid')
    assert back(x)[0].shape[-2:] == (4, 6)
    full = random_vit(patch_stride=7, resize_output='image')
    assert full(x)[0].shape[-2:] == (56, 84)


def test_non_imagenet_normalisation_is_converted():
    vit = random_vit(model_name='vit_base_patch16_clip_384')
    assert vit.renormalize
    raw = torch.rand(1, 3, 32, 48)
    inet = (raw - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)) / torch.tensor([0.229, 0.224,
                                                                                         0.225]).view(1, 3, 1, 1)
    mean = torch.tensor(vit.model.pretrained_cfg['mean']).view(1, 3, 1, 1)
    std = torch.tensor(vit.model.pretrained_cfg['std']).view(1, 3, 1, 1)
    ref = vit.model.forward_intermediates((raw - mean) / std, indices=[1], norm=True, intermediates_only=True)[0]
    torch.testing.assert_close(vit(inet)[0], ref, atol=1e-4, rtol=1e-4)


def _params(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


@pytest.mark.parametrize('layout', ['timm', 'mmengine', 'safetensors'])
def test_checkpoint_layouts_load_and_survive_init_weights(tmp_path, vit, layout):
    reference = vit.model.state_dict()
    if layout == 'timm':
        path = tmp_path / 'vit.pth'
        torch.save(reference, path)
    elif layout == 'mmengine':
        path = tmp_path / 'iter_10.pth'
        state = {f'backbone.model.{k}': v for k, v in reference.items()}
        state['decode_head.conv_seg.weight'] = torch.zeros(3, 384, 1, 1)
        torch.save({'meta': {}, 'state_dict': state}, path)
    else:
        from safetensors.torch import save_file
        path = tmp_path / 'model.safetensors'
        save_file({k: v.contiguous() for k, v in reference.items()}, str(path))

    class Segmentor(BaseModule):  # what mmengine's Runner calls init_weights() on

        def __init__(self):
            super().__init__()
            self.backbone = MODELS.build(
                dict(type='TimmViT', model_name=DINO_S, checkpoint=str(path), model_kwargs=SHALLOW))

    torch.manual_seed(123)  # another seed: a re-initialisation would give other weights
    model = Segmentor()
    assert model.backbone.weights_source == str(path)
    loaded = _params(model.backbone.model)
    for key, value in reference.items():
        torch.testing.assert_close(loaded[key], value, msg=key)
    model.init_weights()
    for key, value in _params(model.backbone.model).items():
        assert torch.equal(value, loaded[key]), f'{key} changed by init_weights()'
    # the check can fail: timm's own init_weights (what mmengine would call without is_init) re-randomises
    model.backbone.model.init_weights()
    assert not torch.equal(model.backbone.model.blocks[0].attn.qkv.weight, loaded['blocks.0.attn.qkv.weight'])


def test_no_weights_error_names_the_options(monkeypatch):
    with pytest.raises(RuntimeError, match=r'checkpoint=.*random_init=True'):
        TimmViT(pretrained=False, model_kwargs=SHALLOW)
    monkeypatch.setattr(timm_weights, 'hub_reachable', lambda timeout=3.0: False)
    monkeypatch.setattr(timm_weights, 'cached_hub_weights', lambda name: None)
    with pytest.raises(RuntimeError, match='hub is unreachable'):
        TimmViT(pretrained=True, model_kwargs=SHALLOW)
    with pytest.warns(UserWarning, match='hub is unreachable'):
        assert TimmViT(pretrained=True, random_init=True, model_kwargs=SHALLOW).weights_source == 'random'


def test_bad_inputs_raise_clear_errors(tmp_path, vit):
    with pytest.raises(FileNotFoundError, match='does not exist'):
        TimmViT(checkpoint=str(tmp_path / 'missing.pth'))
    wrong = tmp_path / 'wrong.pth'
    torch.save({'conv.weight': torch.zeros(1)}, wrong)
    with pytest.raises(ValueError, match='does not fit this model'):
        TimmViT(checkpoint=str(wrong), model_kwargs=SHALLOW)
    with pytest.raises(ValueError, match='not a timm model'):
        TimmViT(model_name='vit_nonexistent_patch3', pretrained=False, random_init=True)
    with pytest.raises(ValueError, match='out of range'):
        random_vit(out_indices=(2, ))
    with pytest.raises(ValueError, match='multiple of the patch size'):
        vit(torch.randn(1, 3, 30, 28))
    with pytest.raises(ValueError, match='resize_output'):
        TimmViT(pretrained=False, random_init=True, resize_output='full', model_kwargs=SHALLOW)
