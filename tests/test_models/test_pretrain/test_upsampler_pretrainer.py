import pytest
import torch
from mmengine.optim import OptimWrapper

import mmjafar  # noqa: F401
from mmjafar.models.pretrain import UpsamplerPretrainer, gaussian_blur, round_to_multiple
from mmjafar.registry import MODELS

from ...test_engine.pretrain_utils import TINY_BACKBONE, TINY_UPSAMPLER


def _model(**kw) -> UpsamplerPretrainer:
    torch.manual_seed(0)
    return MODELS.build(dict(type='UpsamplerPretrainer', backbone=TINY_BACKBONE, upsampler=TINY_UPSAMPLER, **kw))


def _batch(n=2, size=96, seed=0):
    g = torch.Generator().manual_seed(seed)
    small = torch.randint(0, 256, (n, 3, 6, 6), generator=g).float()
    return dict(inputs=list(torch.nn.functional.interpolate(small, size=size, mode='bilinear').byte()))


def test_loss_decreases_on_a_fixed_batch():
    model = _model(downsample_range=(2.0, 2.0), consistency_weight=0.1, consistency_size=24)
    model.init_weights()
    model.train()
    optim = OptimWrapper(torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3))
    batch = _batch()
    losses = [float(model.train_step(batch, optim)['loss']) for _ in range(8)]
    assert losses[-1] < 0.9 * losses[0], losses
    assert int(model.step) == 8


def test_step_outputs_and_shapes():
    model = _model(consistency_weight=0.1, consistency_size=(24, 24))
    data = model.data_preprocessor(_batch(), True)
    out = model(**data, mode='loss')
    assert {'loss_hr', 'loss_consistency', 'hr_cos', 'hr_mse', 'downsample_factor'} <= set(out)
    assert 2 <= float(out['downsample_factor']) <= 4
    feats = model(data['inputs'], mode='tensor')
    assert feats.shape == (2, 64, 96, 96)
    with pytest.raises(ValueError, match='mode'):
        model(data['inputs'], mode='predict')
    with pytest.raises(ValueError, match='multiple of the backbone patch size 16'):
        model(data['inputs'][..., :90, :90], mode='loss')


def test_randomness_is_keyed_by_step_not_global_rng():
    model = _model(consistency_weight=0.1, consistency_size=24, blur_prob=1.0, noise_prob=1.0)
    data = model.data_preprocessor(_batch(), True)
    model.train()
    first = model(**data, mode='loss')
    torch.manual_seed(123)  # the global RNG plays no role
    model.step.zero_()
    again = model(**data, mode='loss')
    assert float(first['downsample_factor']) == float(again['downsample_factor'])
    torch.testing.assert_close(first['loss_consistency'], again['loss_consistency'], rtol=0, atol=0)
    third = model(**data, mode='loss')  # step 1 draws another factor
    assert float(third['downsample_factor']) != float(first['downsample_factor'])


def test_perturb_stays_in_pixel_range_and_blur_is_normalised():
    model = _model(blur_prob=1.0, noise_prob=1.0)
    data = model.data_preprocessor(_batch(), True)
    out = model.perturb(data['inputs'], step=0)
    mean, std = model._pixel_stats(out)
    pixels = out * std + mean
    assert pixels.min() >= -1e-5 and pixels.max() <= 1 + 1e-5
    assert not torch.allclose(out, data['inputs'])
    flat = torch.full((1, 3, 9, 9), 0.7)
    torch.testing.assert_close(gaussian_blur(flat, 5, 1.0), flat)


def test_backbone_left_out_of_checkpoints():
    model = _model()
    state = model.state_dict()
    assert 'step' in state and not any(k.startswith('backbone.') for k in state)
    other = _model()
    missing, unexpected = other.load_state_dict(state, strict=True)
    assert not missing and not unexpected


def test_channels_follow_the_backbone_and_mismatches_are_explained(tmp_path):
    assert _model().upsampler.v_dim == 64
    with pytest.raises(ValueError, match='set upsampler.v_dim=64'):
        MODELS.build(dict(type='UpsamplerPretrainer', backbone=TINY_BACKBONE,
                          upsampler=dict(TINY_UPSAMPLER, v_dim=384)))
    with pytest.raises(ValueError, match='frozen=True'):
        MODELS.build(dict(type='UpsamplerPretrainer', backbone=dict(TINY_BACKBONE, frozen=False),
                          upsampler=TINY_UPSAMPLER))
    # an upsampler checkpoint made for another backbone dimension
    path = tmp_path / 'jafar_384.pth'
    torch.save(MODELS.build(dict(TINY_UPSAMPLER, v_dim=384)).state_dict(), path)
    model = MODELS.build(dict(type='UpsamplerPretrainer', backbone=TINY_BACKBONE,
                              upsampler=dict(TINY_UPSAMPLER, init_cfg=dict(type='Pretrained', checkpoint=str(path)))))
    with pytest.raises(ValueError, match='v_dim=384 but this module was built with v_dim=64'):
        model.init_weights()


def test_round_to_multiple():
    assert round_to_multiple(100, 14) == 98 and round_to_multiple(3, 14) == 14 and round_to_multiple(105, 14) == 112
