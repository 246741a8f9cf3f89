"""Image and BEV augmentations keep geometry and targets consistent."""
import cv2
import numpy as np
import pytest
import torch

from projects.bev.bev.datasets import (LoadMultiViewImages, MultiViewImageAffineAug, RandomBEVTransform,
                                       RasterizeBEVTargets)
from projects.bev.bev.datasets.bev_transforms import transform_xy
from projects.bev.bev.datasets.synthetic import DEFAULT_OBJECTS, synthetic_cam2ego, synthetic_intrinsics
from projects.bev.bev.geometry import BEVGrid, bev_sampling_points, project_to_cameras

GRID = dict(x_range=(-50, 50), y_range=(-50, 50), resolution=2.0, z_centers=(-2.75, -0.25, 2.25, 4.75))


def _bilinear(img: np.ndarray, u: float, v: float) -> np.ndarray:
    """Bilinear read at pixel-centre coordinates (u, v)."""
    u0, v0 = int(np.floor(u)), int(np.floor(v))
    du, dv = u - u0, v - v0
    patch = img[v0:v0 + 2, u0:u0 + 2].astype(np.float64)
    return ((1 - dv) * ((1 - du) * patch[0, 0] + du * patch[0, 1]) +
            dv * ((1 - du) * patch[1, 0] + du * patch[1, 1]))


def _ramp(height: int, width: int) -> np.ndarray:
    """An image linear in u and v, so bilinear resampling reproduces it exactly (up to uint8 rounding)."""
    v, u = np.mgrid[0:height, 0:width].astype(np.float64)
    return np.stack([u * 1.5, v * 2.5, 0.5 * u + v], axis=-1).round().astype(np.uint8)


def _pixels(points_ego: np.ndarray, cam2ego: np.ndarray, cam2img: np.ndarray, image_size):
    """(N, P, 2) pixel coordinates and validity of ego points via geometry.project_to_cameras."""
    uv, valid = project_to_cameras(torch.as_tensor(points_ego, dtype=torch.float64)[None],
                                   torch.as_tensor(cam2ego, dtype=torch.float64)[None],
                                   torch.as_tensor(cam2img, dtype=torch.float64)[None], image_size)
    height, width = image_size
    pix = (uv[0] + 1) * uv.new_tensor([width / 2, height / 2]) - 0.5
    return pix.numpy(), valid[0].numpy()


@pytest.mark.parametrize('is_train,final_size',
                         [(True, (56, 120)), (False, (56, 120)), (True, (112, 238)), (True, (40, 64))])
def test_affine_keeps_projected_points_on_the_same_content(is_train, final_size):
    """A 3-D point projected with K' lands on the augmented image where its K projection was in the original."""
    np.random.seed(3)
    size = (90, 160)
    cam2ego, k = synthetic_cam2ego(), synthetic_intrinsics(size)
    aug = MultiViewImageAffineAug(final_size=final_size, is_train=is_train, zoom_range=(0.9, 1.1),
                                  rotate_range=(-5.0, 5.0))
    results = aug(dict(imgs=[_ramp(*size) for _ in range(6)], cam2img=np.stack([k] * 6)))
    assert results['img_shape'] == final_size and all(im.shape == (*final_size, 3) for im in results['imgs'])
    rng = np.random.default_rng(0)
    points = np.concatenate([rng.uniform(-30, 30, (400, 2)), rng.uniform(-1, 3, (400, 1))], axis=1)
    src, src_ok = _pixels(points, cam2ego, np.stack([k] * 6), size)
    dst, dst_ok = _pixels(points, cam2ego, results['cam2img'], final_size)
    checked = 0
    for cam in range(6):
        for p in range(len(points)):
            (u, v), (u2, v2) = src[cam, p], dst[cam, p]
            # away from both borders (warpAffine blends in the black border beyond the source image)
            inner = 1 <= u2 <= final_size[1] - 2 and 1 <= v2 <= final_size[0] - 2
            if not (src_ok[cam, p] and dst_ok[cam, p] and inner and 3 <= u <= size[1] - 4 and 3 <= v <= size[0] - 4):
                continue
            expected = np.array([1.5 * u, 2.5 * v, 0.5 * u + v])
            got = _bilinear(results['imgs'][cam], u2, v2)
            np.testing.assert_allclose(got, expected, atol=2.0)
            # the stored affine maps the original pixel onto the augmented one
            np.testing.assert_allclose(results['img_aug_mats'][cam] @ [u, v, 1.0], [u2, v2, 1.0], atol=1e-3)
            checked += 1
    assert checked > 100


def test_val_affine_is_deterministic_and_keeps_the_centre_column():
    aug = MultiViewImageAffineAug(final_size=(56, 120), is_train=False)
    k = synthetic_intrinsics((90, 160))
    a = aug(dict(imgs=[_ramp(90, 160)], cam2img=k[None]))
    b = aug(dict(imgs=[_ramp(90, 160)], cam2img=k[None]))
    np.testing.assert_array_equal(a['imgs'][0], b['imgs'][0])
    # principal point stays on the centre column; the top of the image is cropped (bottom rows kept)
    assert a['cam2img'][0, 0, 2] == pytest.approx((120 - 1) / 2, abs=1e-4)
    # shrunk to round(90 * 1.0033 * 120 / 160) = 68 rows (area resize), then the top 68 - 56 rows dropped
    assert a['cam2img'][0, 1, 2] == pytest.approx((44.5 + 0.5) * 68 / 90 - 0.5 - (68 - 56), abs=1e-4)


def test_affine_rejects_bad_arguments():
    with pytest.raises(ValueError, match='final_size'):
        MultiViewImageAffineAug(final_size=(56,))
    with pytest.raises(ValueError, match='scale_range'):
        MultiViewImageAffineAug(scale_range=(1.1, 0.9))


def test_load_multiview_images_reduced_decoding(bev_synthetic):
    paths = [str(bev_synthetic.root + '/' + bev_synthetic.samples[0].img_paths[c]) for c in ('CAM_FRONT',)]
    k = bev_synthetic.cam2img[None].astype(np.float32)
    full = LoadMultiViewImages()(dict(img_paths=paths, cam2img=k))
    half = LoadMultiViewImages(decode_reduction=2)(dict(img_paths=paths, cam2img=k))
    assert full['imgs'][0].shape == (90, 160, 3) and half['imgs'][0].shape == (45, 80, 3)
    assert full['ori_shapes'] == half['ori_shapes'] == [(90, 160)]
    np.testing.assert_allclose(full['cam2img'], k)
    # half-size intrinsics: u' = (u + 0.5) / 2 - 0.5
    np.testing.assert_allclose(half['cam2img'][0, 0], [k[0, 0, 0] / 2, 0.0, (k[0, 0, 2] + 0.5) / 2 - 0.5], rtol=1e-6)
    # content agrees: the red car sits at the same normalised place in both
    red = [np.argwhere((im[..., 0] > 180) & (im[..., 1] < 80)).mean(0) for im in (full['imgs'][0], half['imgs'][0])]
    np.testing.assert_allclose((red[1] + 0.5) * 2 - 0.5, red[0], atol=1.0)
    with pytest.raises(FileNotFoundError, match='cannot read'):
        LoadMultiViewImages()(dict(img_paths=['/nonexistent.jpg'], cam2img=k))
    with pytest.raises(ValueError, match='decode_reduction'):
        LoadMultiViewImages(decode_reduction=3)


def _vehicle_results():
    vehicles = [o for o in DEFAULT_OBJECTS if o.is_vehicle]
    polygons, centers, vis = [], [], []
    for obj in vehicles:
        w, l, _ = obj.size
        corners = np.array([[l, w], [l, -w], [-l, -w], [-l, w]]) / 2
        c, s = np.cos(obj.yaw), np.sin(obj.yaw)
        polygons.append(corners @ np.array([[c, s], [-s, c]]) + np.asarray(obj.center[:2]))
        centers.append(obj.center)
        vis.append(int(obj.visibility))
    return dict(gt_polygons=np.array(polygons), gt_centers=np.array(centers), gt_visibility=np.array(vis))


def test_bev_translation_shifts_targets():
    """M = 4 m forward: the grid looks 4 m further ahead, so every vehicle moves 2 cells (2 m) down."""
    raster = RasterizeBEVTargets(grid=GRID, min_visibility=2)
    plain = raster(_vehicle_results())['gt_bev']
    shift = np.eye(4, dtype=np.float32)
    shift[0, 3] = 4.0
    moved = raster(dict(_vehicle_results(), bev_aug=shift))['gt_bev']
    for key in ('seg', 'valid', 'visibility', 'valid_centerness'):
        np.testing.assert_array_equal(moved[key][:, 2:], plain[key][:, :-2], err_msg=key)
    np.testing.assert_allclose(moved['centerness'][:, 2:], plain['centerness'][:, :-2], atol=1e-6)


def test_random_bev_transform_consistent_with_model_sampling():
    """Cells that the augmented GT marks as vehicle are, once moved by M (as the models move their grid
    points), on a planted vehicle in the original ego frame."""
    np.random.seed(0)
    grid = BEVGrid.build(GRID)
    raster = RasterizeBEVTargets(grid=GRID)
    results = _vehicle_results()
    for _ in range(5):
        out = raster(RandomBEVTransform()(dict(results)))
        m = out['bev_aug']
        yaw = np.degrees(np.arctan2(m[1, 0], m[0, 0]))
        assert abs(yaw) <= 20 and abs(m[0, 3]) <= 30 and abs(m[1, 3]) <= 20 and m[2, 3] == 0
        np.testing.assert_allclose(m[:3, :3] @ m[:3, :3].T, np.eye(3), atol=1e-6)
        seg = out['gt_bev']['seg'][0].astype(bool)
        points = bev_sampling_points(grid, torch.from_numpy(m)[None], 1)[0, :seg.size, :2].numpy()
        points = points.reshape(*grid.shape, 2)[seg]                          # M · cell centre, first height
        # distance to the nearest original footprint (boxes are axis-aligned in their own frame)
        near = np.zeros(len(points), dtype=bool)
        for poly in results['gt_polygons']:
            lo, hi = poly.min(0), poly.max(0)
            gap = np.maximum(np.maximum(lo - points, points - hi), 0.0)
            near |= np.linalg.norm(gap, axis=1) <= grid.resolution * np.sqrt(2)  # rounding dilates by < 1 cell
        assert seg.any() or np.abs(m[:2, 3]).max() > 0
        assert near.all()
        # and the car_front centre, mapped back by M^-1, is inside the augmented mask
        col, row = grid.ego_to_cell(transform_xy(np.array([[10.0, 0.0]]), np.linalg.inv(m)))[0]
        if 0 <= row < grid.shape[0] and 0 <= col < grid.shape[1]:
            assert seg[int(row), int(col)]


def test_random_bev_transform_disabled_is_identity():
    out = RandomBEVTransform(enabled=False)(dict())
    np.testing.assert_array_equal(out['bev_aug'], np.eye(4))
    with pytest.raises(ValueError, match='translate_range'):
        RandomBEVTransform(translate_range=(1.0, 2.0))


def test_rasterize_without_boxes_and_bad_args():
    out = RasterizeBEVTargets(grid=GRID)(dict(gt_polygons=np.zeros((0, 4, 2)), gt_centers=np.zeros((0, 3)),
                                              gt_visibility=np.zeros((0,), np.uint8)))['gt_bev']
    assert out['seg'].sum() == 0 and out['valid'].all() and (out['offset'] == 255).all()
    assert out['seg'].shape == (1, 50, 50) and out['offset'].shape == (2, 50, 50)
    with pytest.raises(ValueError, match='min_visibility'):
        RasterizeBEVTargets(min_visibility=5)


def test_cv2_fill_matches_documented_rounding():
    """The rasteriser's convention: rounded corners, boundary cells filled (what the exact-cell tests rely on)."""
    img = np.zeros((5, 5), np.uint8)
    cv2.fillPoly(img, [np.array([[1, 1], [3, 1], [3, 2], [1, 2]], np.int32)], 1)
    assert img.sum() == 6
