"""Static BEVFormer: the two attention blocks, the encoder and the segmentor (the deformable attention core is in
test_deform_attn.py)."""
import math

import pytest
import torch

from projects.bev.bev.models.bevformer import BEVFormerEncoder
from projects.bev.bev.models.deform_attn import (BEVDeformableSelfAttention, BEVSpatialCrossAttention,
                                                 bev_reference_points)
from .synthetic_training import train_and_validate_synthetic

SYNTHETIC_GRID = dict(x_range=(-50, 50), y_range=(-50, 50), resolution=2.0, z_centers=(-2.75, -0.25, 2.25, 4.75))


def ring_cameras(height: int, width: int, batch: int = 1):
    """``cam2img`` (B, 6, 3, 3) and ``cam2ego`` (B, 6, 4, 4) of six cameras on a ring (the synthetic recipe)."""
    base = torch.tensor([[0., 0., 1.], [-1., 0., 0.], [0., -1., 0.]])    # x_cam -> -y, y_cam -> -z, z_cam -> x
    cam2ego = []
    for yaw in (55.0, 0.0, -55.0, 110.0, 180.0, -110.0):
        a = math.radians(yaw)
        rot_z = torch.tensor([[math.cos(a), -math.sin(a), 0.], [math.sin(a), math.cos(a), 0.], [0., 0., 1.]])
        mat = torch.eye(4)
        mat[:3, :3] = rot_z @ base
        mat[:3, 3] = torch.tensor([1.5 * math.cos(a), 1.5 * math.sin(a), 1.6])
        cam2ego.append(mat)
    focal = 1266.0 * width / 1600.0
    intrinsics = torch.tensor([[focal, 0., (width - 1) / 2], [0., focal, (height - 1) / 2], [0., 0., 1.]])
    return intrinsics.expand(batch, 6, 3, 3).clone(), torch.stack(cam2ego).expand(batch, -1, -1, -1).clone()


# ------------------------------------------------------------------------------------------------ self-attention
def _self_attention_with_offset(offset_xy):
    torch.manual_seed(0)
    attn = BEVDeformableSelfAttention(embed_dims=8, num_heads=2, num_points=4, dropout=0.1).eval()
    with torch.no_grad():
        attn.sampler.sampling_offsets.bias.copy_(torch.tensor(offset_xy).repeat(2 * 4))
    return attn


@pytest.mark.parametrize('offset_xy', [(0.0, 0.0), (1.0, 0.0), (0.5, -1.0)])
def test_self_attention_reduces_to_bilinear_samples(offset_xy):
    """Zero offset weights and logits: every point samples the same place; the result is a fixed bilinear mix of
    the (value-projected) neighbouring cells, zero outside the map."""
    rows, cols = 3, 4
    attn = _self_attention_with_offset(offset_xy)
    query = torch.randn(2, rows * cols, 8)
    pos = torch.randn(1, rows * cols, 8)
    out = attn(query, pos, (rows, cols))
    values = attn.sampler.value_proj(query).view(2, rows, cols, 8)
    dx, dy = offset_xy
    expected = torch.zeros_like(values)
    for r in range(rows):
        for c in range(cols):
            x, y = c + dx, r + dy     # continuous cell coordinates of the sample
            x0, y0 = math.floor(x), math.floor(y)
            for xi, yi in ((x0, y0), (x0 + 1, y0), (x0, y0 + 1), (x0 + 1, y0 + 1)):
                w = (1 - abs(x - xi)) * (1 - abs(y - yi))
                if w > 0 and 0 <= xi < cols and 0 <= yi < rows:
                    expected[:, r, c] += w * values[:, yi, xi]
    expected = query + attn.output_proj(expected.view(2, rows * cols, 8))
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)


def test_bev_reference_points_are_column_row():
    ref = bev_reference_points(2, 4).view(2, 4, 2)
    torch.testing.assert_close(ref[1, 3], torch.tensor([3.5 / 4, 1.5 / 2]))


# ----------------------------------------------------------------------------------------------- cross-attention
def _cross_attention_inputs():
    gen = torch.Generator().manual_seed(1)
    batch, cams, queries, anchors, dims = 2, 3, 6, 2, 8
    query = torch.randn(batch, queries, dims, generator=gen)
    pos = torch.randn(1, queries, dims, generator=gen)
    feats = torch.randn(batch, cams, dims, 5, 7, generator=gen)
    refs = torch.rand(batch, cams, queries, anchors, 2, generator=gen)
    valid = torch.rand(batch, cams, queries, anchors, generator=gen) > 0.5
    valid[:, :, 0] = False                   # query 0 is seen by no camera
    valid[0, :, 1] = True                    # query 1 of sample 0 by all three
    return query, pos, feats, refs, valid


def test_cross_attention_matches_per_query_loop():
    query, pos, feats, refs, valid = _cross_attention_inputs()
    torch.manual_seed(0)
    attn = BEVSpatialCrossAttention(embed_dims=8, num_heads=2, num_points=4).eval()
    with torch.no_grad():       # non-trivial offsets, logits and output bias
        for lin in (attn.sampler.sampling_offsets, attn.sampler.attention_weights, attn.output_proj):
            lin.weight.normal_(0, 0.3)
            lin.bias.normal_(0, 0.3)
    out = attn(query, pos, feats, refs, valid)
    counts = BEVSpatialCrossAttention.hit_counts(valid)
    assert counts[:, 0].tolist() == [0, 0] and counts[0, 1] == 3
    assert counts.tolist() == valid.any(-1).sum(1).tolist()
    shapes = torch.tensor([[5, 7]])
    for b in range(query.shape[0]):
        for q in range(query.shape[1]):
            acc = torch.zeros(8)
            for n in range(feats.shape[1]):
                if valid[b, n, q].any():
                    value = feats[b, n].flatten(1).t()[None]
                    acc += attn.sampler(query[b, q][None, None] + pos[0, q][None, None], value, shapes,
                                        refs[b, n, q][None, None], valid[b, n, q][None, None])[0, 0]
            expected = query[b, q] + attn.output_proj(acc / max(int(counts[b, q]), 1))
            torch.testing.assert_close(out[b, q], expected, atol=1e-5, rtol=1e-5)


def test_cross_attention_unseen_query_keeps_residual():
    query, pos, feats, refs, valid = _cross_attention_inputs()
    attn = BEVSpatialCrossAttention(embed_dims=8, num_heads=2, num_points=4).eval()
    out = attn(query, pos, feats, refs, valid)
    torch.testing.assert_close(out[:, 0], query[:, 0], atol=0, rtol=0)
    assert not torch.allclose(out[:, 1], query[:, 1])
    # no camera sees anything: the block is the identity
    out = attn(query, pos, feats, refs, torch.zeros_like(valid))
    torch.testing.assert_close(out, query, atol=0, rtol=0)


def test_cross_attention_ignores_invalid_anchors():
    """What an invalid anchor would sample must not matter."""
    query, pos, feats, refs, valid = _cross_attention_inputs()
    attn = BEVSpatialCrossAttention(embed_dims=8, num_heads=2, num_points=4).eval()
    moved = torch.where(valid.unsqueeze(-1), refs, torch.rand_like(refs))
    torch.testing.assert_close(attn(query, pos, feats, refs, valid), attn(query, pos, feats, moved, valid))


# ------------------------------------------------------------------------------------------------------- encoder
def test_encoder_shapes_grads_and_anchor_projection():
    torch.manual_seed(0)
    encoder = BEVFormerEncoder(grid=SYNTHETIC_GRID, num_layers=2, num_points_cross=4)
    cam2img, cam2ego = ring_cameras(56, 120, batch=2)
    feats = torch.randn(2, 6, 128, 7, 15, requires_grad=True)
    bev_aug = torch.eye(4).expand(2, 4, 4).clone()
    out = encoder(feats, cam2img, cam2ego, bev_aug, (56, 120))
    assert out.shape == (2, 128, 50, 50)
    (out * torch.randn_like(out)).sum().backward()
    # (the positional embedding only feeds offsets and logits, whose weights start at zero: no gradient yet)
    layer = encoder.layers[0]
    for tensor in (feats.grad, encoder.bev_queries.grad, layer.self_attn.sampler.sampling_offsets.weight.grad,
                   layer.cross_attn.sampler.sampling_offsets.weight.grad,
                   layer.cross_attn.sampler.attention_weights.weight.grad):
        assert tensor is not None and torch.isfinite(tensor).all() and tensor.abs().sum() > 0
    ref, valid = encoder.reference_points(cam2img, cam2ego, None, (56, 120))
    assert ref.shape == (2, 6, 2500, 4, 2) and valid.shape == (2, 6, 2500, 4)
    assert ((ref[valid] >= 0) & (ref[valid] <= 1)).all()
    # the cell ahead (row 19: x = 11 m, col 24: y = 1 m) at z = -0.25 m is seen by CAM_FRONT only, at depth 9.5 m,
    # 1 m left of and 1.85 m below the camera: pixel centre (u, v) = (cx - f / 9.5, cy + 1.85 f / 9.5)
    query_index = 19 * 50 + 24
    assert valid[0, :, query_index, 1].tolist() == [False, True, False, False, False, False]
    focal = 1266.0 * 120 / 1600
    expected = torch.tensor([(59.5 - focal / 9.5 + 0.5) / 120, (27.5 + 1.85 * focal / 9.5 + 0.5) / 56])
    torch.testing.assert_close(ref[0, 1, query_index, 1], expected)
    # a 90-degree yaw of the grid moves the front cell into CAM_BACK_RIGHT / CAM_FRONT_LEFT's field of view
    yaw = torch.eye(4)
    yaw[:2, :2] = torch.tensor([[0., -1.], [1., 0.]])
    _, valid_rot = encoder.reference_points(cam2img[:1], cam2ego[:1], yaw[None], (56, 120))
    assert not valid_rot[0, 1, query_index, 1]


def test_encoder_rejects_bad_configs():
    with pytest.raises(ValueError, match='multiple'):
        BEVFormerEncoder(grid=SYNTHETIC_GRID, num_points_cross=6)
    encoder = BEVFormerEncoder(grid=SYNTHETIC_GRID, num_layers=1, num_points_cross=4)
    cam2img, cam2ego = ring_cameras(56, 120)
    with pytest.raises(ValueError, match='neck out_channels'):
        encoder(torch.randn(1, 6, 64, 7, 15), cam2img, cam2ego, None, (56, 120))


# ----------------------------------------------------------------------------------------------------- segmentor
def _tiny_model(bev_encoder=None):
    from mmjafar.registry import MODELS
    import projects.bev.bev  # noqa: F401  (registration)
    return MODELS.build(dict(
        type='BEVFormerSeg', grid=SYNTHETIC_GRID,
        backbone=dict(type='TimmViT', model_name='vit_small_patch14_dinov2', pretrained=False, random_init=True,
                      model_kwargs=dict(depth=1)),
        neck=dict(type='BEVImageNeck', in_channels=384, out_channels=32),
        upsampler=dict(type='Bilinear'), target_stride=8,
        view_transform=dict(type='BEVFormerEncoder', embed_dims=32, num_layers=2, num_points_cross=4, ffn_dims=64),
        bev_encoder=bev_encoder, head=dict(type='BEVHead', in_channels=32)))


def _tiny_batch(batch: int = 1):
    from mmengine.structures import BaseDataElement, PixelData
    cam2img, cam2ego = ring_cameras(56, 112, batch)
    inputs = dict(imgs=torch.randn(batch, 6, 3, 56, 112), cam2img=cam2img, cam2ego=cam2ego,
                  bev_aug=torch.eye(4).expand(batch, 4, 4).clone())
    samples = []
    for _ in range(batch):
        seg = torch.zeros(1, 50, 50)
        seg[0, 20:23, 24:26] = 1
        gt = PixelData(seg=seg, valid=torch.ones(1, 50, 50, dtype=torch.bool), centerness=seg * 0.5,
                       offset=torch.where(seg.bool(), 0.3, 255.0).expand(2, -1, -1).clone(),
                       valid_centerness=torch.ones(1, 50, 50, dtype=torch.bool))
        samples.append(BaseDataElement(gt_bev=gt, metainfo=dict(sample_token='tiny')))
    return inputs, samples


@pytest.mark.parametrize('bev_encoder', [None, dict(type='ResNetUNet', in_channels=32)],
                         ids=['queries', 'resnet_unet'])
def test_segmentor_modes_and_gradients(bev_encoder):
    torch.manual_seed(0)
    model = _tiny_model(bev_encoder)
    batch = 1 if bev_encoder else 2
    inputs, samples = _tiny_batch(batch)
    assert model(inputs, mode='tensor').shape == (batch, 1, 50, 50)
    losses = model(inputs, samples, mode='loss')
    total = sum(v for k, v in losses.items() if 'loss' in k)
    assert torch.isfinite(total)
    total.backward()
    encoder = model.view_transform
    for param in (encoder.bev_queries, encoder.layers[0].cross_attn.sampler.value_proj.weight,
                  model.neck.proj.weight, model.head.parameters().__next__()):
        assert param.grad is not None and torch.isfinite(param.grad).all() and param.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.backbone.parameters())
    model.eval()
    preds = model(inputs, samples, mode='predict')
    probs = preds[0].pred_bev.seg
    assert probs.shape == (1, 50, 50) and ((probs >= 0) & (probs <= 1)).all()


def test_segmentor_rejects_mismatched_widths():
    from mmjafar.registry import MODELS
    import projects.bev.bev  # noqa: F401
    with pytest.raises(ValueError, match='embed_dims'):
        MODELS.build(dict(
            type='BEVFormerSeg', grid=SYNTHETIC_GRID,
            backbone=dict(type='TimmViT', model_name='vit_small_patch14_dinov2', pretrained=False,
                          random_init=True, model_kwargs=dict(depth=1)),
            neck=dict(type='BEVImageNeck', in_channels=384, out_channels=64),
            view_transform=dict(type='BEVFormerEncoder', embed_dims=32, num_layers=1, num_points_cross=4),
            head=dict(type='BEVHead', in_channels=32)))


# ------------------------------------------------------------------------------------ tools/train.py, 4 variants
@pytest.mark.parametrize('variant', ['lowres', 'bilinear', 'featup', 'jafar'])
def test_train_and_val_through_tools_train(variant, bev_synthetic_root, tmp_path, monkeypatch):
    """A few training steps on a fixed sample (the loss must go down) and one validation pass of each upsampler
    variant on the synthetic tree (tiny random ViT, no upsampler weights), through ``tools/train.py``'s ``main()``."""
    train_and_validate_synthetic('bevformer', variant, bev_synthetic_root, tmp_path, monkeypatch,
                                 ('model.view_transform.num_layers=1', ))
