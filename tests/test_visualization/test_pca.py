import numpy as np
import pytest
import torch

from mmjafar.visualization import denormalize_image, fit_pca, pca_rgb, save_panel_row


def test_fit_pca_finds_the_dominant_axes():
    g = torch.Generator().manual_seed(0)
    coords = torch.randn(500, 3, generator=g) * torch.tensor([10.0, 3.0, 1.0])
    rot, _ = torch.linalg.qr(torch.randn(6, 6, generator=g))
    data = torch.cat([coords, 0.01 * torch.randn(500, 3, generator=g)], 1) @ rot.T + 5
    mean, basis = fit_pca(data)
    torch.testing.assert_close(mean, data.mean(0))
    for i in range(3):  # each principal axis matches the planted direction up to sign
        assert abs(float(basis[:, i] @ rot[:, i])) > 0.99
    with pytest.raises(ValueError, match='N >= 2'):
        fit_pca(torch.randn(1, 4))


def test_pca_rgb_shared_basis_and_panels(tmp_path):
    low = torch.randn(8, 4, 4)
    up = torch.nn.functional.interpolate(low[None], size=(16, 16), mode='nearest')[0]
    a, b = pca_rgb([low, up], fit_index=0, size=(16, 16))
    assert a.shape == (16, 16, 3) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)  # same features -> same colours
    img = denormalize_image(torch.zeros(3, 16, 16), mean=(10, 20, 30), std=(1, 1, 1))
    assert img[0, 0].tolist() == [10, 20, 30]
    save_panel_row([img, a, b], ['image', 'low', 'up'], str(tmp_path / 'p.png'), title_height=10, gap=2)
    from PIL import Image
    assert Image.open(tmp_path / 'p.png').size == (3 * 16 + 2 * 2, 26)
