"""PointBeV: sparse ops, selection, lifting, the model's passes and training through tools/train.py on the synthetic
nuScenes tree (CPU); the masked-dense sparse UNet is in test_sparse_unet.py."""
import os

import pytest
import torch
import torch.nn.functional as F

from projects.bev.bev.datasets.synthetic import synthetic_cam2ego, synthetic_intrinsics
from projects.bev.bev.geometry import BEVGrid, project_to_cameras
from projects.bev.bev.models.coord_embed import FourierCoordEmbedding, coordinate_bounds
from projects.bev.bev.models.pointbev import PointBeVLifting, merge_passes
from projects.bev.bev.models.sparse_ops import (cells_to_mask, dilate_mask, random_cells, select_fine_cells,
                                                sparse_grid_sample)
from .synthetic_training import SMALL_IMAGES, train_and_validate_synthetic

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG_DIR = os.path.join(REPO, 'projects', 'bev', 'configs', 'pointbev')
TINY_GRID = dict(x_range=(-50, 50), y_range=(-50, 50), resolution=2.0, z_centers=(-2.75, -0.25, 2.25, 4.75))


# ----------------------------------------------------------------------------------------------- sparse grid sample
@pytest.mark.parametrize('dtype', [torch.float64, torch.float32])
def test_sparse_grid_sample_matches_grid_sample(dtype):
    gen = torch.Generator().manual_seed(0)
    feats = torch.randn(3, 5, 7, 11, generator=gen, dtype=dtype, requires_grad=True)
    grid = torch.rand(200, 2, generator=gen, dtype=dtype) * 2.6 - 1.3      # incl. points beyond the borders
    grid[:4] = torch.tensor([[-1.0, -1.0], [1.0, 1.0], [-1.0, 1.0], [0.0, 0.0]], dtype=dtype)  # edges, centre
    index = torch.randint(0, 3, (200,), generator=gen)
    out = sparse_grid_sample(feats, grid, index)
    ref = torch.empty_like(out)
    for k in range(3):
        sel = index == k
        ref[sel] = F.grid_sample(feats[k:k + 1], grid[sel].view(1, 1, -1, 2), mode='bilinear',
                                 padding_mode='zeros', align_corners=False)[0, :, 0].T
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    torch.testing.assert_close(out, ref, atol=tol, rtol=0)
    weight = torch.randn(out.shape, generator=gen, dtype=dtype)
    grad, = torch.autograd.grad((out * weight).sum(), feats)
    grad_ref, = torch.autograd.grad((ref * weight).sum(), feats)
    torch.testing.assert_close(grad, grad_ref, atol=tol, rtol=0)


def test_sparse_grid_sample_errors_and_empty():
    feats = torch.randn(2, 3, 4, 4)
    assert sparse_grid_sample(feats, torch.zeros(0, 2), torch.zeros(0, dtype=torch.long)).shape == (0, 3)
    with pytest.raises(ValueError, match='map_index'):
        sparse_grid_sample(feats, torch.zeros(5, 2), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match='grid'):
        sparse_grid_sample(feats, torch.zeros(5, 3), torch.zeros(5, dtype=torch.long))


# ---------------------------------------------------------------------------------------------------- selection
def test_random_cells_distinct_and_sized():
    cells = random_cells(3, 100, 40, generator=torch.Generator().manual_seed(1))
    assert cells.shape == (3, 40)
    assert all(len(set(row.tolist())) == 40 for row in cells)
    assert int(cells.min()) >= 0 and int(cells.max()) < 100
    assert cells_to_mask(cells, (10, 10)).sum().item() == 120
    with pytest.raises(ValueError, match='count'):
        random_cells(1, 10, 11)


def test_dilate_mask():
    mask = torch.zeros(1, 1, 9, 9, dtype=torch.bool)
    mask[0, 0, 4, 4] = True
    mask[0, 0, 0, 8] = True
    grown = dilate_mask(mask, 3)
    assert grown.sum() == 9 + 4
    assert grown[0, 0, 3:6, 3:6].all() and grown[0, 0, 0:2, 7:9].all()


def test_select_fine_cells_dilates_top_anchors_and_fills():
    gen = torch.Generator().manual_seed(0)
    scores = torch.rand(2, 1, 20, 20, generator=gen) * 0.1
    mask = torch.ones(2, 1, 20, 20, dtype=torch.bool)
    scores[0, 0, 5, 5], scores[0, 0, 15, 12] = 0.9, 0.8
    scores[1, 0, 0, 0] = 0.95                                 # corner anchor: window clipped to 2x2 cells
    # under budget: every dilated anchor cell is kept, the rest is random fill
    cells = select_fine_cells(scores, mask, num_anchors=2, kernel_size=3, budget=30, generator=gen)
    assert cells.shape == (2, 30) and all(len(set(row.tolist())) == 30 for row in cells)
    picked = cells_to_mask(cells, (20, 20))
    assert picked[0, 0, 4:7, 4:7].all() and picked[0, 0, 14:17, 11:14].all()
    assert picked[1, 0, 0:2, 0:2].all()
    # over budget: cells around the strongest anchor come first
    cells = select_fine_cells(scores, mask, num_anchors=2, kernel_size=3, budget=9, generator=gen)
    assert cells_to_mask(cells, (20, 20))[0, 0, 4:7, 4:7].all()
    # anchors come only from predicted cells
    masked = mask.clone()
    masked[0, 0, 5, 5] = False
    cells = select_fine_cells(scores, masked, num_anchors=1, kernel_size=3, budget=9, generator=gen)
    assert cells_to_mask(cells, (20, 20))[0, 0, 14:17, 11:14].all()
    with pytest.raises(ValueError, match='kernel_size'):
        select_fine_cells(scores, mask, 2, 4, 10)
    with pytest.raises(ValueError, match='budget'):
        select_fine_cells(scores, mask, 2, 3, 401)


def test_merge_passes_averages_where_both_predicted():
    mask_a = torch.tensor([[True, True, False]]).view(1, 1, 1, 3)
    mask_b = torch.tensor([[False, True, True]]).view(1, 1, 1, 3)
    a = dict(seg=torch.tensor([1.0, 3.0, 0.0]).view(1, 1, 1, 3))
    b = dict(seg=torch.tensor([0.0, 5.0, 7.0]).view(1, 1, 1, 3))
    merged, union = merge_passes([(a, mask_a), (b, mask_b)])
    assert merged['seg'].flatten().tolist() == [1.0, 4.0, 7.0]
    assert union.all()


# ---------------------------------------------------------------------------------------- coordinates and lifting
def test_coord_embedding_shapes_and_bounds():
    grid = BEVGrid.build(TINY_GRID)
    torch.testing.assert_close(coordinate_bounds(grid), torch.tensor([60.0, 60.0, 1.2 * 4.75]))
    embed = FourierCoordEmbedding()
    assert embed.num_fourier == 48
    assert [m.out_features for m in embed.mlp if isinstance(m, torch.nn.Linear)] == [256, 256, 128]
    assert embed(torch.rand(2, 5, 3)).shape == (2, 5, 128)
    with pytest.raises(ValueError, match='coordinates'):
        embed(torch.rand(2, 5, 2))


def _ring_cameras(batch_size=1, image_size=(28, 60)):
    """The synthetic dataset's six-camera rig with intrinsics for ``image_size``: ``(B, 6, 3, 3)``, ``(B, 6, 4, 4)``."""
    cam2img = torch.as_tensor(synthetic_intrinsics(image_size), dtype=torch.float32)
    cam2ego = torch.as_tensor(synthetic_cam2ego(), dtype=torch.float32)
    return cam2img.expand(batch_size, 6, 3, 3), cam2ego.expand(batch_size, -1, -1, -1)


def test_lifting_sparse_equals_dense_grid_sample_reference():
    torch.manual_seed(0)
    grid = BEVGrid.build(TINY_GRID)
    lifting = PointBeVLifting(TINY_GRID, in_channels=8, out_channels=8, coord_embed=None).double()
    image_size = (28, 60)
    cam2img, cam2ego = _ring_cameras(2, image_size)
    cam2img, cam2ego = cam2img.double(), cam2ego.double()
    feats = torch.randn(2, 6, 8, 7, 15, dtype=torch.float64)
    bev_aug = torch.eye(4, dtype=torch.float64).repeat(2, 1, 1)
    bev_aug[1, :2, 3] = torch.tensor([3.0, -2.0])
    # dense reference: grid_sample every voxel in every camera, average over the cameras that see it
    points = grid.voxel_centers(dtype=torch.float64).permute(1, 2, 0, 3).reshape(1, -1, 3).repeat(2, 1, 1)
    points = points @ bev_aug[:, :3, :3].transpose(1, 2) + bev_aug[:, None, :3, 3]
    uv, valid = project_to_cameras(points, cam2ego, cam2img, image_size)
    sampled = F.grid_sample(feats.flatten(0, 1), uv.flatten(0, 1).unsqueeze(1), align_corners=False)
    sampled = sampled.view(2, 6, 8, -1) * valid.unsqueeze(2)
    dense = sampled.sum(1) / valid.sum(1, keepdim=True).clamp_min(1)             # (B, C, R * C * Z)
    dense = dense.view(2, 8, -1, 4).permute(0, 2, 3, 1).reshape(2, -1, 32)   # (B, cells, Z * C)
    expect = lifting.compress(dense).transpose(1, 2).reshape(2, 8, 50, 50)
    assert valid.any(1).float().mean() > 0.5                                # most voxels are seen
    bev, mask = lifting(feats, lifting.all_cells(2), cam2img, cam2ego, image_size, bev_aug)
    assert mask.all()
    torch.testing.assert_close(bev, expect)
    # a sparse selection reproduces the dense features at its cells and is zero elsewhere
    cells = random_cells(2, 2500, 300)
    bev_sparse, mask_sparse = lifting(feats, cells, cam2img, cam2ego, image_size, bev_aug)
    assert mask_sparse.sum() == 600
    torch.testing.assert_close(bev_sparse, torch.where(mask_sparse, expect, 0.0))


# ------------------------------------------------------------------------------------------------------- the model
def _tiny_pointbev(**overrides):
    """A PointBeV with a one-block random ViT and narrow BEV layers on the 50×50×4 test grid."""
    from mmjafar.registry import MODELS
    width = 16
    cfg = dict(type='PointBeV',
               backbone=dict(type='TimmViT', model_name='vit_small_patch14_dinov2', pretrained=False,
                             random_init=True, model_kwargs=dict(depth=1)),
               neck=dict(type='BEVImageNeck', in_channels=384, out_channels=width, num_convs=1),
               upsampler=dict(type='Bilinear'), target_stride=8, grid=TINY_GRID,
               view_transform=dict(type='PointBeVLifting', in_channels=width, out_channels=width,
                                   coord_embed=dict(hidden_channels=16)),
               bev_encoder=dict(type='SparseResNetUNet', in_channels=width, base_channels=8),
               head=dict(type='SparseBEVHead', in_channels=width),
               coarse_cells=150, fine_cells=150, fine_anchors=6, fine_kernel=3)
    cfg.update(overrides)
    return MODELS.build(cfg)


def _fake_batch(batch_size=2, image_size=(56, 120)):
    from mmengine.structures import BaseDataElement, PixelData
    gen = torch.Generator().manual_seed(0)
    cam2img, cam2ego = _ring_cameras(batch_size, image_size)
    inputs = dict(imgs=torch.randn(batch_size, 6, 3, *image_size, generator=gen), cam2img=cam2img,
                  cam2ego=cam2ego, bev_aug=torch.eye(4).repeat(batch_size, 1, 1))
    samples = []
    for index in range(batch_size):
        seg = torch.zeros(1, 50, 50, dtype=torch.uint8)
        seg[0, 20:23, 24:26] = 1
        offset = torch.full((2, 50, 50), 255.0)
        offset[:, 20:23, 24:26] = 0.5
        sample = BaseDataElement(metainfo=dict(sample_token=str(index)))
        sample.gt_bev = PixelData(seg=seg, valid=torch.ones(1, 50, 50, dtype=torch.bool),
                                  centerness=torch.rand(1, 50, 50, generator=gen), offset=offset,
                                  valid_centerness=torch.ones(1, 50, 50, dtype=torch.bool))
        samples.append(sample)
    return inputs, samples


def test_pointbev_training_step_coarse_and_fine_passes():
    torch.manual_seed(0)
    model = _tiny_pointbev().train()
    inputs, samples = _fake_batch()
    calls = []
    sparse_forward = model.sparse_forward

    def record(img_feats, inputs_, cells):
        preds, mask = sparse_forward(img_feats, inputs_, cells)
        calls.append((cells, {k: v.detach() for k, v in preds.items()}, mask))
        return preds, mask

    model.sparse_forward = record
    merged, union = model.forward_train(inputs)
    (coarse_cells, coarse, coarse_mask), (fine_cells, fine, fine_mask) = calls
    assert coarse_cells.shape == fine_cells.shape == (2, 150)
    assert coarse_mask.flatten(1).sum(1).tolist() == [150, 150]
    # the fine pass grows 3x3 windows around the 6 most confident coarse cells (36 cells at most < 150)
    scores = torch.where(coarse_mask, coarse['seg'].sigmoid(), -1.0).flatten(1)
    for b in range(2):
        for anchor in scores[b].topk(6).indices.tolist():
            r, c = divmod(anchor, 50)
            assert fine_mask[b, 0, max(r - 1, 0):r + 2, max(c - 1, 0):c + 2].all()
    assert torch.equal(union, coarse_mask | fine_mask)
    both = coarse_mask & fine_mask
    assert both.any()
    torch.testing.assert_close(merged['seg'].detach()[both], ((coarse['seg'] + fine['seg']) / 2)[both])
    only_fine = fine_mask & ~coarse_mask
    torch.testing.assert_close(merged['seg'].detach()[only_fine], fine['seg'][only_fine])
    assert (merged['seg'].detach()[~union] == 0).all()
    # the loss: finite, gradients reach the trainable network only (backbone frozen)
    model.sparse_forward = sparse_forward
    losses = model(inputs, samples, mode='loss')
    assert {'loss_seg', 'loss_centerness', 'loss_offset', 'loss_uncertainty'} <= set(losses)
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()
    for name, param in model.named_parameters():
        if name.startswith('img_branch.backbone'):
            assert not param.requires_grad and param.grad is None, name
        elif param.requires_grad:
            assert param.grad is not None and torch.isfinite(param.grad).all(), name
    assert model.view_transform.compress[0].weight.grad.abs().sum() > 0
    assert model.img_branch.neck.proj.weight.grad.abs().sum() > 0


def test_pointbev_coarse_only_and_clamped_counts():
    model = _tiny_pointbev(fine_pass=False, coarse_cells=10 ** 6).train()
    assert model.coarse_cells == 2500
    _, mask = model.forward_train(_fake_batch(1)[0])
    assert mask.all()
    with pytest.raises(ValueError, match='fine_kernel'):
        _tiny_pointbev(fine_kernel=4)
    with pytest.raises(ValueError, match='in_channels'):
        _tiny_pointbev(view_transform=dict(type='PointBeVLifting', in_channels=8, out_channels=16))


def test_pointbev_dense_predict_and_tensor_modes():
    torch.manual_seed(0)
    model = _tiny_pointbev().eval()
    inputs, samples = _fake_batch()
    with torch.no_grad():
        logits = model(inputs, mode='tensor')
        out = model(inputs, samples, mode='predict')
    assert logits.shape == (2, 1, 50, 50) and torch.isfinite(logits).all()
    assert len(out) == 2 and out[0].pred_bev.seg.shape == (1, 50, 50)
    torch.testing.assert_close(out[1].pred_bev.seg, logits[1].sigmoid())
    # the dense pass predicts every cell: no zero-logit holes
    assert (logits != 0).float().mean() > 0.99


# ------------------------------------------------------------------------------------- tools/train.py on synthetic
@pytest.mark.parametrize('variant', ['lowres', 'bilinear', 'featup', 'jafar'])
def test_train_and_val_through_tools_train(variant, bev_synthetic_root, tmp_path, monkeypatch):
    """A few coarse/fine training iterations on a fixed sample (the loss must go down) and one dense validation pass
    of each upsampler variant on the synthetic tree (tiny random ViT, random upsampler weights, 28x60 images),
    through ``tools/train.py``'s ``main()``."""
    narrow = ('model.neck.out_channels=32', 'model.view_transform.in_channels=32',  # narrow BEV layers: a short run
              'model.view_transform.out_channels=32', 'model.bev_encoder.in_channels=32',
              'model.bev_encoder.base_channels=16', 'model.head.in_channels=32')
    # at the schedule's starting lr (1e-4) the loss of the first coarse/fine steps still rises; 3e-3 lowers it
    train_and_validate_synthetic('pointbev', variant, bev_synthetic_root, tmp_path, monkeypatch,
                                 SMALL_IMAGES + narrow + ('param_scheduler.0.eta_max=3e-3', ))
