"""GuidedMultiLevelNeck (drop-in for mmseg's MultiLevelNeck) and GuidedAlignNeck (hierarchical backbones)."""
import pytest
import torch

from mmjafar.models.layers import apply_rope_2d
from mmjafar.models.upsamplers import jafar as jafar_module
from mmjafar.registry import MODELS
from mmjafar.structures import GuidedFeatures

from mmseg.models.necks import MultiLevelNeck

JAFAR = dict(type='JAFAR', qk_dim=16, num_heads=2)


def vit_levels(channels=32, grid=(6, 5), batch=2, image=(96, 80)):
    torch.manual_seed(0)
    return GuidedFeatures([torch.randn(batch, channels, *grid) for _ in range(4)], image=torch.randn(batch, 3, *image))


def hierarchical_levels(channels=(8, 16, 24, 24), grid=(16, 16), batch=2):
    torch.manual_seed(0)
    maps = [torch.randn(batch, c, grid[0] >> i, grid[1] >> i) for i, c in enumerate(channels)]
    return GuidedFeatures(maps, image=torch.randn(batch, 3, 4 * grid[0], 4 * grid[1]))


@pytest.mark.parametrize('norm_act', [dict(), dict(norm_cfg=dict(type='BN'), act_cfg=dict(type='ReLU'))])
def test_bilinear_equals_multilevel_neck(norm_act):
    args = dict(in_channels=[32] * 4, out_channels=16, scales=[4, 2, 1, 0.5], **norm_act)
    stock = MultiLevelNeck(**args).eval()
    stock.init_weights()
    ours = MODELS.build(dict(type='GuidedMultiLevelNeck', upsampler=dict(type='Bilinear'), **args)).eval()
    ours.load_state_dict(stock.state_dict())  # same parameter names: stock checkpoints load strictly
    feats = vit_levels()
    with torch.no_grad():
        expected, out = stock(list(feats)), ours(feats)
    assert isinstance(out, GuidedFeatures) and out.image is feats.image
    assert [tuple(x.shape) for x in out] == [(2, 16, 24, 20), (2, 16, 12, 10), (2, 16, 6, 5), (2, 16, 3, 2)]
    for a, b in zip(out, expected):
        torch.testing.assert_close(a, b, atol=0, rtol=0)


def test_one_shared_jafar_for_every_vit_level_encodes_the_image_once(monkeypatch):
    neck = MODELS.build(dict(type='GuidedMultiLevelNeck', in_channels=[32] * 4, out_channels=16,
                             scales=[4, 2, 1, 0.5], upsampler=JAFAR, upsample_inputs=True)).eval()
    assert len(neck.upsamplers.upsamplers) == 1 and neck.upsamplers.upsamplers[0].v_dim == 32
    calls = []
    monkeypatch.setattr(jafar_module, 'apply_rope_2d', lambda *a, **k: calls.append(1) or apply_rope_2d(*a, **k))
    with torch.no_grad():
        out = neck(vit_levels())
    assert calls == [1]  # the image code (encoder + RoPE) is computed once for the x4 and x2 levels
    assert [tuple(x.shape) for x in out] == [(2, 16, 24, 20), (2, 16, 12, 10), (2, 16, 6, 5), (2, 16, 3, 2)]


def test_after_lateral_the_upsampler_has_out_channels_and_per_level_upsamplers():
    neck = MODELS.build(dict(type='GuidedMultiLevelNeck', in_channels=[32] * 4, out_channels=16,
                             scales=[4, 2, 1, 0.5], upsampler=dict(type='CARAFE', impl='torch'),
                             share_upsampler=False))
    ups = neck.upsamplers.upsamplers
    assert [up.channels for up in ups] == [16, 16]
    assert [len([n for n, _ in up.named_children() if n.startswith('up')]) for up in ups] == [2, 1]  # x4, x2
    out = neck(vit_levels())
    sum(x.mean() for x in out).backward()  # every parameter is used (no unused ones under DDP)
    assert all(p.grad is not None for p in neck.parameters())


def test_pretrained_upsampler_survives_init_weights(tmp_path):
    src = MODELS.build(dict(JAFAR, v_dim=32))
    path = tmp_path / 'jafar.pth'
    torch.save(src.state_dict(), path)
    neck = MODELS.build(dict(type='GuidedMultiLevelNeck', in_channels=[32] * 4, out_channels=16,
                             scales=[4, 2, 1, 0.5], upsample_inputs=True,
                             upsampler=dict(JAFAR, init_cfg=dict(type='Pretrained', checkpoint=str(path)))))
    neck.init_weights()
    for key, value in src.state_dict().items():
        torch.testing.assert_close(neck.upsamplers.upsamplers[0].state_dict()[key], value)


def test_align_neck_brings_coarse_levels_to_the_target_grid():
    neck = MODELS.build(dict(type='GuidedAlignNeck', in_channels=[8, 16, 24, 24],
                             upsampler=dict(type='JBUStack'))).eval()
    ups = neck.upsamplers.upsamplers
    # one upsampler per channel count (16: x2, 24: x4 and x8), channels and stages filled in
    assert [(up.feat_dim, up.num_stages) for up in ups] == [(16, 1), (24, 3)]
    feats = hierarchical_levels()
    with torch.no_grad():
        out = neck(feats)
    assert [tuple(x.shape) for x in out] == [(2, 8, 16, 16), (2, 16, 16, 16), (2, 24, 16, 16), (2, 24, 16, 16)]
    assert out[0] is feats[0] and out.image is feats.image


def test_align_neck_target_level_and_odd_grids():
    neck = MODELS.build(dict(type='GuidedAlignNeck', in_channels=[8, 16, 24, 24], upsampler=dict(JAFAR),
                             target_level=1)).eval()
    torch.manual_seed(0)
    # grids of a 100x75 image with ceil rounding: 25x19, 13x10, 7x5, 4x3
    maps = [torch.randn(1, c, h, w) for c, (h, w) in zip([8, 16, 24, 24], [(25, 19), (13, 10), (7, 5), (4, 3)])]
    with torch.no_grad():
        out = neck(GuidedFeatures(maps, image=torch.randn(1, 3, 100, 75)))
    assert [tuple(x.shape[-2:]) for x in out] == [(25, 19), (13, 10), (13, 10), (13, 10)]


def test_one_line_errors():
    feats = hierarchical_levels()
    neck = MODELS.build(dict(type='GuidedAlignNeck', in_channels=[8, 16, 24, 32], upsampler=dict(JAFAR)))
    with pytest.raises(ValueError, match=r'level 3 has shape .* in_channels\[3\] = 32'):
        neck(feats)
    neck = MODELS.build(dict(type='GuidedAlignNeck', in_channels=[8, 16, 24, 24], upsampler=dict(JAFAR)))
    with pytest.raises(ValueError, match="GuidedEncoderDecoder"):
        neck(tuple(feats))  # plain tuple: no guidance image
    with pytest.raises(IndexError, match='target_level 4 is out of range'):
        MODELS.build(dict(type='GuidedAlignNeck', in_channels=[8, 16, 24, 24], upsampler=JAFAR, target_level=4))
    with pytest.raises(ValueError, match='sets v_dim=384 but level 1 has 16 channels'):
        MODELS.build(dict(type='GuidedAlignNeck', in_channels=[8, 16, 24, 24], upsampler=dict(JAFAR, v_dim=384)))
    neck = MODELS.build(dict(type='GuidedAlignNeck', in_channels=[8, 16, 24, 24], upsampler=dict(JAFAR),
                             in_strides=[4, 8, 16, 64]))
    with pytest.raises(ValueError, match='not a x16 ratio'):
        neck(feats)
    with pytest.raises(KeyError, match='not registered'):
        MODELS.build(dict(type='GuidedAlignNeck', in_channels=[8], in_strides=[4],
                          upsampler=dict(type='NoSuchUpsampler')))


def test_unguided_upsampler_accepts_plain_tuples():
    neck = MODELS.build(dict(type='GuidedAlignNeck', in_channels=[8, 16, 24, 24],
                             upsampler=dict(type='CARAFE', impl='torch')))
    out = neck(tuple(hierarchical_levels()))
    assert [tuple(x.shape) for x in out] == [(2, 8, 16, 16), (2, 16, 16, 16), (2, 24, 16, 16), (2, 24, 16, 16)]
