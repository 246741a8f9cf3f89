"""Pieces shared by the BEV models: BEVLoss arithmetic, the image branch (ViT -> upsampler -> neck), the FeatUp row,
dense lifting, ResNetUNet, BEVHead."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import projects.bev.bev  # noqa: F401  (registration)
from mmjafar.models.upsamplers import JBUStack
from mmjafar.registry import MODELS
from projects.bev.bev.datasets.synthetic import synthetic_cam2ego, synthetic_intrinsics
from projects.bev.bev.geometry import BEVGrid, bev_sampling_points, project_to_cameras
from projects.bev.bev.models.image_branch import BEVImageBranch
from projects.bev.bev.models.lifting import DenseLifting, lift_features
from projects.bev.bev.models.losses import BEVLoss

TINY_VIT = dict(type='TimmViT', model_name='vit_small_patch14_dinov2', pretrained=False, random_init=True,
                model_kwargs=dict(depth=1))
GRID = dict(x_range=(-50, 50), y_range=(-50, 50), resolution=2.0, z_centers=(-2.75, -0.25, 2.25, 4.75))


# ---------------------------------------------------------------------------------------------------- BEVLoss
def _gt(seg, valid, centerness, offset, valid_centerness):
    return dict(seg=torch.tensor(seg, dtype=torch.float32).view(1, 1, 2, 2),
                valid=torch.tensor(valid).view(1, 1, 2, 2),
                centerness=torch.tensor(centerness, dtype=torch.float32).view(1, 1, 2, 2),
                offset=torch.tensor(offset, dtype=torch.float32).view(1, 2, 2, 2),
                valid_centerness=torch.tensor(valid_centerness).view(1, 1, 2, 2))


@pytest.fixture
def loss_case():
    gt = _gt(seg=[1, 0, 1, 0], valid=[True, True, False, True], centerness=[1.0, 0.2, 0.5, 0.0],
             offset=[[0.5, 255, 2.0, 255], [-1.0, 255, 1.0, 255]],
             valid_centerness=[True, False, True, True])
    preds = dict(seg=torch.tensor([2.0, -1.0, 0.5, 1.0]).view(1, 1, 2, 2),
                 centerness=torch.tensor([0.0, 3.0, -1.0, 2.0]).view(1, 1, 2, 2),
                 offset=torch.tensor([[1.0, 0.0, 0.0, 9.0], [0.0, 0.0, 0.0, 9.0]]).view(1, 2, 2, 2))
    return preds, gt


def _bce(x, y, pw):
    s = 1 / (1 + math.exp(-x))
    return -(pw * y * math.log(s) + (1 - y) * math.log(1 - s))


def test_bev_loss_terms_by_hand(loss_case):
    preds, gt = loss_case
    loss = BEVLoss(pos_weight=2.13, loss_weights=(10.0, 0.5, 0.5))
    raw = loss.raw_losses(preds, gt)
    # seg over the 3 valid cells (cell 2 masked)
    seg = (_bce(2.0, 1, 2.13) + _bce(-1.0, 0, 2.13) + _bce(1.0, 0, 2.13)) / 3
    sig = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    # centerness over valid_centerness cells 0, 2, 3
    cen = ((sig(0.0) - 1.0) ** 2 + (sig(-1.0) - 0.5) ** 2 + (sig(2.0) - 0.0) ** 2) / 3
    # offset: vehicle & valid & not 255 = cell 0 only (cell 2 is a vehicle but invalid); mean over 2 channels
    off = (abs(1.0 - 0.5) + abs(0.0 + 1.0)) / 2
    assert raw['seg'].item() == pytest.approx(seg, rel=1e-5)
    assert raw['centerness'].item() == pytest.approx(cen, rel=1e-5)
    assert raw['offset'].item() == pytest.approx(off, rel=1e-5)
    out = loss(preds, gt)
    assert set(out) == {'loss_seg', 'loss_centerness', 'loss_offset', 'loss_uncertainty'}
    assert out['loss_seg'].item() == pytest.approx(10 * seg, rel=1e-5)  # w = 0 at init
    assert out['loss_offset'].item() == pytest.approx(0.5 * off, rel=1e-5)
    assert out['loss_uncertainty'].item() == 0.0


def test_bev_loss_uncertainty_weights_and_gradients(loss_case):
    preds, gt = loss_case
    loss = BEVLoss(loss_weights=(10.0, 0.5, 0.5))
    w = torch.tensor([0.3, -0.2, 1.0])
    with torch.no_grad():
        loss.log_vars.copy_(w)
    raw = {k: v.item() for k, v in loss.raw_losses(preds, gt).items()}
    out = loss(preds, gt)
    for k, (name, c) in enumerate(zip(('seg', 'centerness', 'offset'), (10.0, 0.5, 0.5))):
        assert out[f'loss_{name}'].item() == pytest.approx(c * math.exp(-w[k].item()) * raw[name], rel=1e-5)
    assert out['loss_uncertainty'].item() == pytest.approx(0.5 * w.sum().item(), rel=1e-5)
    sum(out.values()).backward()
    expected = [-c * math.exp(-w[k].item()) * raw[n] + 0.5
                for k, (n, c) in enumerate(zip(('seg', 'centerness', 'offset'), (10.0, 0.5, 0.5)))]
    assert loss.log_vars.grad.tolist() == pytest.approx(expected, rel=1e-4)
    # without learned weights: plain c_k L_k, no regulariser, no gradient to the weights
    fixed = BEVLoss(learn_uncertainty=False)(preds, gt)
    assert 'loss_uncertainty' not in fixed
    assert fixed['loss_seg'].item() == pytest.approx(10 * raw['seg'], rel=1e-5)
    # PointBeV's variant divides every term by the number of terms
    divided = BEVLoss(divide_by_terms=True)(preds, gt)
    assert divided['loss_seg'].item() == pytest.approx(10 * raw['seg'] / 3, rel=1e-5)


def test_bev_loss_pred_mask_and_empty_selection(loss_case):
    preds, gt = loss_case
    loss = BEVLoss()
    mask = torch.tensor([False, True, True, True]).view(1, 1, 2, 2)
    raw = loss.raw_losses(preds, gt, pred_mask=mask)
    assert raw['seg'].item() == pytest.approx((_bce(-1.0, 0, 2.13) + _bce(1.0, 0, 2.13)) / 2, rel=1e-5)
    assert raw['offset'].item() == 0.0  # the only supervised offset cell (0) is not predicted
    # only the seg prediction present: the other terms are skipped, and nothing selected gives exact zeros
    empty = loss(dict(seg=preds['seg'].clone().requires_grad_()), gt, pred_mask=torch.zeros_like(mask))
    assert set(empty) == {'loss_seg', 'loss_uncertainty'} and empty['loss_seg'].item() == 0.0
    with pytest.raises(ValueError, match='grid'):
        loss(dict(seg=torch.zeros(1, 1, 3, 3)), gt)
    with pytest.raises(ValueError, match='loss_weights'):
        BEVLoss(loss_weights=(1.0, 2.0))


# ---------------------------------------------------------------------------------------------------- image branch
UPSAMPLERS = {
    'none': None,
    'bilinear': dict(type='Bilinear'),
    'featup': dict(type='JBUStack', feat_dim=384, num_steps=2),
    'jafar': dict(type='JAFAR', v_dim=384),
}


@pytest.mark.parametrize('name', list(UPSAMPLERS))
def test_image_branch_shapes_and_freezing(name):
    torch.manual_seed(0)
    branch = BEVImageBranch(backbone=TINY_VIT, neck=dict(type='BEVImageNeck', in_channels=384, out_channels=16),
                            upsampler=UPSAMPLERS[name], target_stride=8)
    branch.train()
    imgs = torch.randn(2, 3, 3, 28, 60)  # 28x60 -> the ViT sees 28x56 (2x4 tokens)
    out = branch(imgs)
    expected = (2, 4) if name == 'none' else (3, 7)  # the one size rule: floor(28/8)=3, floor(60/8)=7
    assert tuple(out.shape) == (2, 3, 16, *expected)
    assert branch.output_size((28, 60)) == expected
    assert not branch.backbone.training and not any(p.requires_grad for p in branch.backbone.parameters())
    if branch.upsampler is not None:
        assert not branch.upsampler.training
        assert not any(p.requires_grad for p in branch.upsampler.parameters())
    out.square().mean().backward()
    assert all(p.grad is not None for p in branch.neck.parameters())
    # each camera is processed on its own: camera 1 of sample 0 equals a 1-camera batch of it
    single = branch(imgs[:1, 1:2])
    torch.testing.assert_close(single[0, 0], out[0, 1].detach(), atol=1e-4, rtol=1e-4)


def test_image_branch_resizes_to_patch_multiples_and_checks_input():
    branch = BEVImageBranch(backbone=TINY_VIT, neck=dict(type='BEVImageNeck', in_channels=384, out_channels=8))
    x = torch.randn(1, 3, 28, 60)
    assert tuple(branch.backbone_input(x).shape) == (1, 3, 28, 56)
    assert branch.backbone_input(x[..., :56]) is not None and branch.backbone_input(x[..., :56]).shape[-1] == 56
    with pytest.raises(ValueError, match=r'\(B, N, 3, H, W\)'):
        branch(torch.randn(1, 3, 28, 56))
    trainable = BEVImageBranch(backbone=TINY_VIT, neck=dict(type='BEVImageNeck', in_channels=384, out_channels=8),
                               upsampler=dict(type='JAFAR', v_dim=384, frozen=False))
    assert any(p.requires_grad for p in trainable.upsampler.parameters())  # an explicit `frozen` wins
    # the shipped configs' sizes: 224x480 at stride 8 and 4, 56x120 (synthetic) at stride 8
    assert trainable.output_size((224, 480)) == (28, 60) and trainable.output_size((56, 120)) == (7, 15)
    trainable.target_stride = 4.0
    assert trainable.output_size((224, 480)) == (56, 120)


def test_featup_row_is_jbustack_with_fixed_steps():
    """The BEV FeatUp row, JBUStack(num_steps=2): the first two x2 stages, the residual projection, then the
    resize."""
    torch.manual_seed(0)
    full = JBUStack(feat_dim=8).eval()
    four = JBUStack(feat_dim=8, num_steps=4).eval()
    four.load_state_dict(full.state_dict())
    two = JBUStack(feat_dim=8, num_steps=2).eval()
    assert two.num_steps == 2 and isinstance(two, JBUStack)
    two.load_state_dict(full.state_dict())  # all four stages exist: JBUStack checkpoints load strictly
    image, feats = torch.randn(1, 3, 32, 48), torch.randn(1, 8, 2, 3)
    with torch.no_grad():
        torch.testing.assert_close(four(image, feats, (32, 48)), full(image, feats, (32, 48)))
        # JBUStack stops once the grid covers the output: at 5x7 that is FeatUp's first two stages
        torch.testing.assert_close(two(image, feats, (5, 7)), full(image, feats, (5, 7)))
        x = full.up1(feats, F.adaptive_avg_pool2d(image, (4, 6)))
        x = full.up2(x, F.adaptive_avg_pool2d(image, (8, 12)))
        x = x + 0.1 * full.fixup_proj(x)
        torch.testing.assert_close(two(image, feats, (8, 12)), x)
        # a small output: the fixed two steps, then a resize down (the free stack would stop after one step)
        torch.testing.assert_close(two(image, feats, (3, 5)), F.interpolate(x, (3, 5), mode='bilinear'))
        assert not torch.allclose(full(image, feats, (3, 5)), two(image, feats, (3, 5)))
    with pytest.raises(ValueError, match='num_steps'):
        JBUStack(feat_dim=8, num_steps=5)


# ---------------------------------------------------------------------------------------------------- lifting
def _cameras(image_size, cams=(1, 2)):
    cam2ego = torch.tensor(synthetic_cam2ego(), dtype=torch.float32)[list(cams)].unsqueeze(0)
    cam2img = torch.tensor(synthetic_intrinsics(image_size), dtype=torch.float32).expand(1, len(cams), 3, 3)
    return cam2ego, cam2img


def _pinhole(points, cam2ego, cam2img):
    """Independent numpy projection: pixel (u, v) and depth of ego points in one camera."""
    rot, trans = cam2ego[:3, :3], cam2ego[:3, 3]
    p_cam = (points - trans) @ rot
    pix = p_cam @ cam2img.T
    return pix[:, 0] / pix[:, 2], pix[:, 1] / pix[:, 2], p_cam[:, 2]


def test_lifting_samples_linear_features_exactly():
    """A feature map that is linear in the pixel coordinates is reproduced exactly by bilinear sampling, so every
    voxel seen by one camera must get ``a u + b v + c`` of its own projection (computed here independently)."""
    height, width = 36, 64
    grid = BEVGrid.build(GRID)
    cam2ego, cam2img = _cameras((height, width), cams=(1, ))
    v, u = torch.meshgrid(torch.arange(height, dtype=torch.float32), torch.arange(width, dtype=torch.float32),
                          indexing='ij')
    feats = torch.stack([u, v, torch.ones_like(u)]).view(1, 1, 3, height, width)
    points = bev_sampling_points(grid, None, 1)
    lifted, count = lift_features(feats, points, cam2ego, cam2img, (height, width))
    pu, pv, depth = _pinhole(points[0].double().numpy(), cam2ego[0, 0].double().numpy(),
                             cam2img[0, 0].double().numpy())
    inside = (depth > 0) & (pu > 0) & (pu < width - 1) & (pv > 0) & (pv < height - 1)
    assert inside.sum() > 50
    np.testing.assert_allclose(lifted[0, 0, inside].numpy(), pu[inside], atol=2e-3)
    np.testing.assert_allclose(lifted[0, 1, inside].numpy(), pv[inside], atol=2e-3)
    np.testing.assert_allclose(lifted[0, 2, inside].numpy(), 1.0, atol=1e-5)
    outside = (depth <= 0) | (pu < -0.5) | (pu > width - 0.5) | (pv < -0.5) | (pv > height - 0.5)
    assert (lifted[0, :, outside] == 0).all() and (count[0, outside] == 0).all()


def test_lifting_blob_lands_in_expected_cells():
    """A 3×3 feature blob where a car 11 m ahead, 1 m to the left (a cell centre, on the ground) appears in
    CAM_FRONT lights up that cell and only cells near it (depth ambiguity stretches it along the ray)."""
    height, width, stride = 56, 120, 4
    grid = BEVGrid.build(dict(GRID, z_centers=(0.0, )))
    cam2ego, cam2img = _cameras((height, width), cams=(1, ))
    car = np.array([[11.0, 1.0, 0.0]])
    pu, pv, _ = _pinhole(car, cam2ego[0, 0].double().numpy(), cam2img[0, 0].double().numpy())
    row, col = int(pv[0] // stride), int(pu[0] // stride)
    feats = torch.zeros(1, 1, 1, height // stride, width // stride)
    feats[..., row - 1:row + 2, col - 1:col + 2] = 1.0
    lifted = DenseLifting(grid=grid)(feats, dict(imgs=torch.zeros(1, 1, 3, height, width), cam2img=cam2img,
                                                 cam2ego=cam2ego, bev_aug=None))
    assert tuple(lifted.shape) == (1, 1, 1, 50, 50)
    car_col, car_row = (int(v) for v in grid.ego_to_cell(car[0, :2]))
    assert (car_row, car_col) == (19, 24)
    assert lifted[0, 0, 0, car_row, car_col].item() == pytest.approx(1.0)
    hot = torch.nonzero(lifted[0, 0, 0] > 0)
    assert len(hot) > 1
    # lit cells: the car's column and its neighbour, from a few cells behind the car to 8 cells beyond it along
    # the camera ray (ground points far away converge to the horizon), never at or behind the ego (row 25)
    assert ((hot[:, 1] - car_col).abs() <= 1).all()
    assert ((hot[:, 0] - car_row >= -8) & (hot[:, 0] - car_row <= 2)).all()


def test_lifting_averages_over_cameras_that_see_the_point():
    height, width = 28, 56
    grid = BEVGrid.build(GRID)
    cam2ego, cam2img = _cameras((height, width), cams=(0, 1))  # front-left and front overlap
    feats = torch.stack([torch.full((2, height, width), 2.0), torch.full((2, height, width), 4.0)]).unsqueeze(0)
    points = bev_sampling_points(grid, None, 1)
    lifted, count = lift_features(feats, points, cam2ego, cam2img, (height, width))
    _, valid = project_to_cameras(points, cam2ego, cam2img, (height, width))
    torch.testing.assert_close(count, valid.sum(1))
    both, only_front, only_left = valid[0, 0] & valid[0, 1], ~valid[0, 0] & valid[0, 1], valid[0, 0] & ~valid[0, 1]
    assert both.any() and only_front.any() and only_left.any()
    # interior samples of a constant map are exact; samples within half a pixel of the border see zero padding
    uv, _ = project_to_cameras(points, cam2ego, cam2img, (height, width))
    interior = (uv.abs() < 1 - 1.0 / min(height, width)).all(-1) | ~valid
    sel = interior.all(1)[0]
    torch.testing.assert_close(lifted[0, 0, both & sel], torch.full_like(lifted[0, 0, both & sel], 3.0))
    torch.testing.assert_close(lifted[0, 0, only_front & sel], torch.full_like(lifted[0, 0, only_front & sel], 4.0))
    torch.testing.assert_close(lifted[0, 0, only_left & sel], torch.full_like(lifted[0, 0, only_left & sel], 2.0))
    assert (lifted[0, :, count[0] == 0] == 0).all()
    with pytest.raises(ValueError, match='cam2ego'):
        lift_features(feats, points, cam2ego[:, :1], cam2img[:, :1], (height, width))


def test_lifting_follows_the_bev_augmentation():
    """Moving the grid points by +1 cell in x (bev_aug) makes row r sample what row r-1 sampled before."""
    height, width = 28, 56
    grid = BEVGrid.build(GRID)
    cam2ego, cam2img = _cameras((height, width), cams=(0, 1, 2))
    feats = torch.randn(1, 3, 4, 7, 14)
    lifting = DenseLifting(grid=grid)
    base = dict(imgs=torch.zeros(1, 3, 3, height, width), cam2img=cam2img, cam2ego=cam2ego)
    aug = torch.eye(4).unsqueeze(0)
    aug[0, 0, 3] = grid.resolution
    plain = lifting(feats, dict(base, bev_aug=None))
    moved = lifting(feats, dict(base, bev_aug=aug))
    torch.testing.assert_close(moved[..., 1:, :], plain[..., :-1, :], atol=1e-5, rtol=1e-5)


# ---------------------------------------------------------------------------------------------------- BEV nets
def test_resnet_unet_and_head_shapes():
    unet = MODELS.build(dict(type='ResNetUNet', in_channels=16))
    head = MODELS.build(dict(type='BEVHead', in_channels=16))
    for size in ((50, 50), (64, 48)):
        x = torch.randn(1, 16, *size, requires_grad=True)
        y = unet(x)
        assert y.shape == x.shape
        out = head(y)
        assert {k: tuple(v.shape) for k, v in out.items()} == {
            'seg': (1, 1, *size), 'centerness': (1, 1, *size), 'offset': (1, 2, *size)}
        sum(v.sum() for v in out.values()).backward()
        assert x.grad is not None and torch.isfinite(x.grad).all()
    assert unet.stem[0].stride == (2, 2) and unet.layer3[0].conv1.out_channels == 256
    with pytest.raises(ValueError, match='BEV features'):
        unet(torch.randn(1, 8, 16, 16))
    with pytest.raises(ValueError, match='seg'):
        MODELS.build(dict(type='BEVHead', in_channels=16, outputs=dict(centerness=1)))
