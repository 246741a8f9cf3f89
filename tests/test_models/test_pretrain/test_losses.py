import pytest
import torch

from mmjafar.models.pretrain import CosineMSELoss


def test_paper_loss_values():
    target = torch.randn(2, 5, 3, 4)
    loss = CosineMSELoss()
    zero = loss(target.clone(), target)
    assert zero['cos'].abs() < 1e-6 and zero['mse'] == 0
    flipped = loss(-target, target)
    torch.testing.assert_close(flipped['cos'], torch.tensor(2.0))
    torch.testing.assert_close(flipped['mse'], (2 * target).pow(2).mean())
    weighted = CosineMSELoss(cos_weight=0.5, mse_weight=3.0)(-target, target)
    torch.testing.assert_close(weighted['cos'], torch.tensor(1.0))
    torch.testing.assert_close(weighted['mse'], 3 * (2 * target).pow(2).mean())


def test_official_minmax_variant():
    target, pred = torch.randn(2, 6, 4, 4), torch.randn(2, 6, 4, 4)
    out = CosineMSELoss(normalize='minmax')(pred, target)
    # reference written pixel by pixel: scale both by the target's per-pixel channel range
    t = target.permute(0, 2, 3, 1).reshape(-1, 6)
    p = pred.permute(0, 2, 3, 1).reshape(-1, 6)
    lo, hi = t.min(1, keepdim=True).values, t.max(1, keepdim=True).values
    ref_mse = (((p - lo) / (hi - lo + 1e-6) - (t - lo) / (hi - lo + 1e-6)) ** 2).mean()
    ref_cos = (1 - torch.nn.functional.cosine_similarity(p, t, dim=1)).mean()
    torch.testing.assert_close(out['mse'], ref_mse)
    torch.testing.assert_close(out['cos'], ref_cos)
    # min-max normalisation makes the loss independent of the feature scale
    scaled = CosineMSELoss(normalize='minmax')(10 * pred, 10 * target)
    torch.testing.assert_close(scaled['mse'], out['mse'], rtol=1e-4, atol=1e-6)


def test_loss_errors():
    with pytest.raises(ValueError, match='normalize'):
        CosineMSELoss(normalize='l1')
    with pytest.raises(ValueError, match='differ in shape'):
        CosineMSELoss()(torch.zeros(1, 3, 4, 4), torch.zeros(1, 3, 2, 2))
