import numpy as np
import pytest
import torch
from PIL import Image

from mmjafar.models.upsamplers import JAFAR, Bilinear
from mmjafar.visualization import (attention_query_size, feature_figure, heat_colors, load_guidance_image,
                                   overlay_heatmap, parse_points, query_attention, save_panel_grid, save_panel_row)


def test_panel_grid_keeps_panel_sizes(tmp_path):
    a = np.full((20, 30, 3), 10, np.uint8)
    b = np.full((10, 40, 3), 200, np.uint8)
    img = save_panel_grid([[a, b], [b, None]], [['a', 'b'], ['c', '']], str(tmp_path / 'g.png'), title_height=18,
                          gap=4)
    # columns as wide as their widest panel (40, 40), rows as tall as their tallest (20, 10) plus captions
    assert img.size == (40 + 4 + 40, 20 + 18 + 4 + 10 + 18)
    arr = np.asarray(Image.open(tmp_path / 'g.png'))
    assert (arr[18:38, 0:30] == 10).all() and (arr[18:28, 44:84] == 200).all()
    assert (arr[18 + 20 + 4 + 18:, 44:] == 255).all()  # the empty cell stays white
    save_panel_row([a, b], ['a', 'b'], str(tmp_path / 'r.png'))
    assert Image.open(tmp_path / 'r.png').size == (30 + 4 + 40, 20 + 18)
    with pytest.raises(ValueError, match='title'):
        save_panel_grid([[a]], [['a', 'b']], str(tmp_path / 'x.png'))


def test_heatmap_overlay():
    assert tuple(heat_colors(np.array(1.0))) == (220, 20, 0) and tuple(heat_colors(np.array(0.0))) == (0, 0, 64)
    image = np.zeros((8, 8, 3), np.uint8)
    values = np.zeros((2, 2))
    values[1, 0] = 3.0
    out = overlay_heatmap(image, values, alpha=1.0)
    assert (out[4:, :4] == (220, 20, 0)).all() and (out[:4] == (0, 0, 64)).all()  # nearest blocks, min-max scaled


def test_load_guidance_image_crops_to_patch_multiples(tmp_path):
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (90, 150, 3), dtype=np.uint8)).save(tmp_path / 'i.png')
    pixels, image = load_guidance_image(str(tmp_path / 'i.png'), size=60, multiple=14)
    # shorter side 90 -> 60, longer 150 -> 100; crops to 56 x 98 (multiples of 14), aspect not squashed
    assert pixels.shape == (56, 98, 3) and image.shape == (1, 3, 56, 98)
    assert abs(image.mean().item()) < 3


def test_points_and_query_grid():
    assert parse_points('0.5,0.25 1,0') == [(0.5, 0.25), (1.0, 0.0)]
    assert parse_points(None) == []
    with pytest.raises(ValueError, match='fractions'):
        parse_points('2,0.5')
    assert attention_query_size((448, 448), (32, 32)) == (128, 128)
    assert attention_query_size((32, 48), (4, 6)) == (32, 48)


def test_query_attention_reads_rows_of_the_attention_maps():
    torch.manual_seed(0)
    up = JAFAR(v_dim=16, qk_dim=32).eval()
    image, feats = torch.randn(1, 3, 32, 32), torch.randn(1, 16, 4, 4)
    rows = query_attention(up, image, feats, (32, 32), [(0.0, 0.0), (0.99, 0.5)])
    full = up.attention_maps(image, feats, (32, 32))[0]
    np.testing.assert_allclose(rows[0], full[0].reshape(4, 4).numpy(), rtol=1e-6)
    np.testing.assert_allclose(rows[1], full[16 * 32 + 31].reshape(4, 4).numpy(), rtol=1e-6)
    np.testing.assert_allclose(rows.sum((1, 2)), 1.0, rtol=1e-5)
    with pytest.raises(TypeError, match='attention_maps'):
        query_attention(Bilinear(), image, feats, (32, 32), [(0.5, 0.5)])


def test_feature_figure(tmp_path):
    torch.manual_seed(0)
    pixels = np.random.default_rng(1).integers(0, 255, (32, 48, 3), dtype=np.uint8)
    image, feats = torch.randn(1, 3, 32, 48), torch.randn(1, 16, 4, 6)
    ups = {'Bilinear': Bilinear(), 'JAFAR': JAFAR(v_dim=16, qk_dim=32).eval()}
    seconds = feature_figure(pixels, image, feats, ups, str(tmp_path / 'f.png'), points=[(0.5, 0.5)])
    assert set(seconds) == {'Bilinear', 'JAFAR'}
    width, height = Image.open(tmp_path / 'f.png').size
    assert width == 4 * 48 + 3 * 4  # image, low-res, two upsamplers; panels at full size, never stretched
    assert height > 2 * 32  # header, feature row and one attention row

    with pytest.raises(ValueError, match='aspect ratio'):
        feature_figure(pixels, image, feats, ups, str(tmp_path / 'g.png'), output_size=(32, 32))
    feature_figure(pixels, image, feats, {'Bilinear': Bilinear()}, str(tmp_path / 'h.png'), output_size=(64, 96))
    assert Image.open(tmp_path / 'h.png').size == (3 * 96 + 2 * 4, Image.open(tmp_path / 'h.png').size[1])
