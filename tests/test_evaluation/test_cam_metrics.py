import math

import pytest
import torch

from mmjafar.evaluation.cam_metrics import (CAM_METRICS, adcc, average_drop, average_gain, average_increase,
                                            cam_metrics_per_image, coherency, complexity, summarize_cam_metrics)

# Three images: a drop (0.8 -> 0.6), an increase (0.5 -> 0.9) and no change (0.25 -> 0.25).
FULL = torch.tensor([0.8, 0.5, 0.25], dtype=torch.float64)
MASKED = torch.tensor([0.6, 0.9, 0.25], dtype=torch.float64)


def test_average_drop_increase_gain_by_hand():
    # drop: (0.8 - 0.6) / 0.8 = 0.25; none for the others
    torch.testing.assert_close(average_drop(FULL, MASKED), torch.tensor([0.25, 0.0, 0.0], dtype=torch.float64))
    torch.testing.assert_close(average_increase(FULL, MASKED), torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64))
    # gain: (0.9 - 0.5) / (1 - 0.5) = 0.8
    torch.testing.assert_close(average_gain(FULL, MASKED), torch.tensor([0.0, 0.8, 0.0], dtype=torch.float64))


def test_gain_is_zero_when_the_full_score_is_one():
    assert average_gain(torch.tensor([1.0]), torch.tensor([1.0])).item() == 0.0


def test_scores_must_be_probabilities():
    with pytest.raises(ValueError, match='softmax'):
        average_drop(torch.tensor([3.0]), torch.tensor([0.5]))
    with pytest.raises(ValueError, match='same shape'):
        average_drop(torch.tensor([0.3, 0.2]), torch.tensor([0.5]))


def test_coherency_by_hand():
    cam = torch.tensor([[[0.0, 1.0], [2.0, 3.0]]])
    # identical maps: r = 1 -> 1; reversed maps: r = -1 -> 0
    assert coherency(cam.clone(), cam).item() == pytest.approx(1.0)
    assert coherency(cam.flip(-1).flip(-2), cam).item() == pytest.approx(0.0)
    # a = (1, 0, 0, 0), b = (0, 1, 2, 3): centred a = (.75, -.25, -.25, -.25), b = (-1.5, -.5, .5, 1.5)
    a = torch.tensor([[[1.0, 0.0], [0.0, 0.0]]])
    ca = [0.75, -0.25, -0.25, -0.25]
    cb = [-1.5, -0.5, 0.5, 1.5]
    r = sum(x * y for x, y in zip(ca, cb)) / math.sqrt(sum(x * x for x in ca) * sum(y * y for y in cb))
    assert r == pytest.approx(-0.7745966692)  # -1.5 / sqrt(0.75 * 5)
    assert coherency(a, cam).item() == pytest.approx((1 + r) / 2)


def test_coherency_of_constant_maps():
    flat = torch.ones(1, 2, 2)
    assert coherency(flat, flat.clone()).item() == 1.0
    assert coherency(flat, torch.arange(4.0).view(1, 2, 2)).item() == 0.5


def test_complexity_is_the_share_of_active_pixels():
    cam = torch.tensor([[[0.0, 0.1], [0.0, 5.0]], [[0.0, 0.0], [0.0, 0.0]]])
    torch.testing.assert_close(complexity(cam), torch.tensor([0.5, 0.0]))


def test_adcc_is_the_harmonic_mean():
    # coherency 0.9, complexity 0.4 (-> 0.6), drop 0.25 (-> 0.75): 3 / (1/0.9 + 1/0.6 + 1/0.75)
    # = 3 / (10/9 + 5/3 + 4/3) = 3 / (37/9) = 27/37
    value = adcc(*(torch.tensor([v], dtype=torch.float64) for v in (0.9, 0.4, 0.25))).item()
    assert value == pytest.approx(27 / 37, abs=1e-12)
    assert adcc(torch.tensor([0.9]), torch.tensor([1.0]), torch.tensor([0.0])).item() == 0.0
    with pytest.raises(ValueError, match='fractions'):
        adcc(torch.tensor([90.0]), torch.tensor([0.4]), torch.tensor([0.25]))


def test_per_image_and_summary():
    cam = torch.tensor([[[0.0, 1.0], [2.0, 3.0]]] * 3, dtype=torch.float64)
    per = cam_metrics_per_image(FULL, MASKED, cam, cam.clone())
    assert set(per) == set(CAM_METRICS)
    # complexity 3/4 everywhere, coherency 1: ADCC = 3 / (1 + 4 + 1 / (1 - drop))
    expected = torch.tensor([3 / (1 + 4 + 1 / 0.75), 3 / 6, 3 / 6], dtype=torch.float64)
    torch.testing.assert_close(per['ADCC'], expected)
    summary = summarize_cam_metrics(per)
    assert summary['num_images'] == 3
    assert summary['A.D'] == pytest.approx(100 * 0.25 / 3)
    assert summary['A.I'] == pytest.approx(100 / 3)
    assert summary['A.G'] == pytest.approx(100 * 0.8 / 3)
    assert summary['Coherency'] == pytest.approx(100.0)
    assert summary['Complexity'] == pytest.approx(75.0)
    assert summary['ADCC'] == pytest.approx(100 * expected.mean().item())
    with pytest.raises(ValueError, match='no image'):
        summarize_cam_metrics({k: torch.zeros(0) for k in CAM_METRICS})
