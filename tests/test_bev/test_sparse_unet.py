"""PointBeV's masked-dense sparse UNet: the layers against point-list definitions of spconv's, masked norms, inactive
cells ignored, and the whole UNet against spconv itself when it is installed."""
import itertools

import pytest
import torch
import torch.nn.functional as F

from projects.bev.bev.models.sparse_unet import (MaskedBatchNorm2d, MaskedInstanceNorm2d, SparseBEVHead,
                                                 SparseInverseConv2d, SparseMaxPool2d, SparseResNetUNet, SubMConv2d)


# -------------------------------------------------------------------------------------- masked-dense sparse layers
def _active(mask):
    return [tuple(p) for p in mask[0, 0].nonzero().tolist()]


def test_subm_conv_pool_inverse_match_explicit_sparse_loops():
    """Check the masked-dense layers against point-list definitions of spconv's SubMConv2d, SparseMaxPool2d and
    SparseInverseConv2d (rule books written out by hand)."""
    gen = torch.Generator().manual_seed(0)
    height, width, c_in, c_out = 7, 6, 3, 2
    mask = torch.rand(1, 1, height, width, generator=gen) > 0.5
    x = torch.where(mask, torch.randn(1, c_in, height, width, generator=gen, dtype=torch.float64), 0.0)
    active = set(_active(mask))
    # submanifold 3x3: outputs at active sites, sum over active neighbours
    conv = SubMConv2d(c_in, c_out, 3).double()
    out = conv(x, mask)
    for (i, j) in itertools.product(range(height), range(width)):
        expect = torch.zeros(c_out, dtype=torch.float64)
        if (i, j) in active:
            for di, dj in itertools.product(range(3), range(3)):
                p = (i + di - 1, j + dj - 1)
                if p in active:
                    expect += conv.weight[:, :, di, dj] @ x[0, :, p[0], p[1]]
        torch.testing.assert_close(out[0, :, i, j], expect)
    # 3x3 / 2 max-pool: output site o active iff its window holds an active site; max over active sites only
    x_neg = torch.where(mask, -1.0 - x.abs(), 0.0)                      # all active values negative
    pooled, pooled_mask = SparseMaxPool2d(3, 2)(x_neg, mask)
    rule = {}                                                           # (input site, output site) -> kernel offset
    for (i, j) in active:
        for oi, oj in itertools.product(range(pooled.shape[2]), range(pooled.shape[3])):
            di, dj = i - (2 * oi - 1), j - (2 * oj - 1)
            if 0 <= di < 3 and 0 <= dj < 3:
                rule[(i, j), (oi, oj)] = (di, dj)
    outputs = {o for _, o in rule}
    assert set(_active(pooled_mask)) == outputs
    for o in outputs:
        ins = [p for p, oo in rule if oo == o]
        expect = torch.stack([x_neg[0, :, p[0], p[1]] for p in ins]).max(dim=0).values
        torch.testing.assert_close(pooled[0, :, o[0], o[1]], expect)
    assert (pooled[~pooled_mask.expand_as(pooled)] == 0).all()
    # inverse conv with the pool's rule book: out[p] = sum over pairs (p, o) of W[offset] x[o]
    inv = SparseInverseConv2d(c_in, c_out, 3, 2).double()
    coarse = torch.where(pooled_mask, torch.randn(pooled.shape, generator=gen, dtype=torch.float64), 0.0)
    up = inv(coarse, mask)
    assert up.shape == (1, c_out, height, width)
    for (i, j) in itertools.product(range(height), range(width)):
        expect = torch.zeros(c_out, dtype=torch.float64)
        for (p, o), (di, dj) in rule.items():
            if p == (i, j):
                expect += inv.weight[:, :, di, dj].T @ coarse[0, :, o[0], o[1]]
        torch.testing.assert_close(up[0, :, i, j], expect)


def test_masked_batchnorm_equals_batchnorm1d_on_active_rows():
    gen = torch.Generator().manual_seed(0)
    mask = torch.rand(2, 1, 6, 5, generator=gen) > 0.4
    x = torch.where(mask, torch.randn(2, 4, 6, 5, generator=gen) * 3 + 1, 0.0)
    bn, ref = MaskedBatchNorm2d(4), torch.nn.BatchNorm1d(4)
    with torch.no_grad():
        bn.weight.uniform_(0.5, 2, generator=gen), bn.bias.uniform_(-1, 1, generator=gen)
    ref.load_state_dict(bn.state_dict())
    rows = x.permute(0, 2, 3, 1)[mask[:, 0]]                            # (N_active, C)
    out = bn(x, mask)
    torch.testing.assert_close(out.permute(0, 2, 3, 1)[mask[:, 0]], ref(rows))
    assert (out.permute(0, 2, 3, 1)[~mask[:, 0]] == 0).all()
    torch.testing.assert_close(bn.running_mean, ref.running_mean)
    torch.testing.assert_close(bn.running_var, ref.running_var)
    bn.eval(), ref.eval()
    torch.testing.assert_close(bn(x, mask).permute(0, 2, 3, 1)[mask[:, 0]], ref(rows))
    norm = MaskedInstanceNorm2d(4)(x, mask)
    for b in range(2):
        sel = x[b].permute(1, 2, 0)[mask[b, 0]]
        expect = (sel - sel.mean(0)) / (sel.var(0, unbiased=False) + 1e-5).sqrt()
        torch.testing.assert_close(norm[b].permute(1, 2, 0)[mask[b, 0]], expect)


@pytest.mark.parametrize('training', [True, False])
def test_sparse_unet_and_heads_ignore_inactive_cells(training):
    torch.manual_seed(0)
    unet, head = SparseResNetUNet(16, 8), SparseBEVHead(16)
    unet.train(training), head.train(training)
    mask = torch.rand(2, 1, 25, 25) > 0.7
    x = torch.where(mask, torch.randn(2, 16, 25, 25), 0.0).requires_grad_()
    noisy = torch.where(mask, x, 100 * torch.randn(2, 16, 25, 25))     # garbage at inactive cells
    feats = unet(x, mask)
    assert feats.shape == x.shape
    torch.testing.assert_close(unet(noisy, mask), feats, atol=1e-5, rtol=0)
    assert (feats.masked_select(~mask) == 0).all()
    preds = head(feats, mask)
    assert set(preds) == {'seg', 'centerness', 'offset'} and preds['offset'].shape == (2, 2, 25, 25)
    for name, value in head(unet(noisy, mask), mask).items():
        torch.testing.assert_close(value, preds[name], atol=1e-5, rtol=0)
        assert (value.masked_select(~mask) == 0).all()
    grad, = torch.autograd.grad(sum(p.sum() for p in preds.values()), x)
    assert grad.masked_select(~mask).abs().max() == 0 and grad.masked_select(mask).abs().max() > 0


def test_sparse_unet_with_all_cells_active_is_a_dense_network():
    torch.manual_seed(0)
    unet = SparseResNetUNet(8, 4).eval()
    x = torch.randn(1, 8, 13, 13)
    out = unet(x, torch.ones(1, 1, 13, 13, dtype=torch.bool))
    assert out.shape == x.shape and out.abs().min() >= 0 and torch.isfinite(out).all()
    with pytest.raises(ValueError, match='bool mask'):
        unet(x, torch.ones(1, 1, 13, 13))


# --------------------------------------------------------------------------- comparison with spconv (when installed)
def _spconv_unet_forward(spconv, unet, tensor, training):
    """SparseResNetUNet's computation written with spconv layers (weights copied from ``unet``)."""
    algo = spconv.ConvAlgo.Native

    def subm(t, conv, level=0):
        # one rule book per kernel size and level (spconv caches them in the tensor under the key)
        size = conv.kernel_size[0]
        layer = spconv.SubMConv2d(conv.in_channels, conv.out_channels, size, bias=False, algo=algo,
                                  indice_key=f'subm{size}_{level}')
        weight = conv.weight.permute(0, 2, 3, 1)                      # (out, kh, kw, in)
        if size == 1:                  # spconv's 1x1 fast path reads the same buffer as an (in, out) matrix
            weight = conv.weight[:, :, 0, 0].T.reshape(weight.shape)
        with torch.no_grad():
            layer.weight.copy_(weight)
        return layer(t)

    def bn(t, norm):
        return t.replace_feature(F.batch_norm(t.features, norm.running_mean.clone(), norm.running_var.clone(),
                                              norm.weight, norm.bias, training, 0.0, norm.eps))

    def relu(t):
        return t.replace_feature(F.relu(t.features))

    skips = [tensor]
    feats = relu(bn(subm(tensor, unet.stem), unet.stem_bn))
    for level, blocks in enumerate(unet.levels):
        for block in blocks:
            out = relu(bn(subm(feats, block.conv1, level), block.bn1))
            out = bn(subm(out, block.conv2, level), block.bn2)
            identity = feats if block.shortcut_conv is None else bn(subm(feats, block.shortcut_conv, level),
                                                                    block.shortcut_bn)
            feats = out.replace_feature(F.relu(out.features + identity.features))
        feats = spconv.SparseMaxPool2d(3, 2, 1, indice_key=f'pool{level}', algo=algo)(feats)
        if level < 2:
            skips.append(feats)
    for level, (up, skip) in zip((2, 1, 0), zip(unet.ups, reversed(skips))):
        inverse = spconv.SparseInverseConv2d(up.up.weight.shape[0], up.up.weight.shape[1], 3,
                                             indice_key=f'pool{level}', bias=False, algo=algo)
        with torch.no_grad():
            inverse.weight.copy_(up.up.weight.permute(1, 2, 3, 0))
        out = bn(inverse(feats), up.bn)
        feats = out.replace_feature(out.features + skip.features)
    return feats


@pytest.mark.parametrize('training', [True, False])
def test_masked_dense_unet_matches_spconv(training):
    """The masked-dense emulation equals spconv's sparse UNet at the active cells (skipped without spconv)."""
    spconv = pytest.importorskip('spconv.pytorch')
    torch.manual_seed(0)
    unet = SparseResNetUNet(6, 4).train(training)
    for module in unet.modules():
        if isinstance(module, MaskedBatchNorm2d):
            with torch.no_grad():
                module.running_mean.uniform_(-0.5, 0.5), module.running_var.uniform_(0.5, 2.0)
                module.weight.uniform_(0.5, 1.5), module.bias.uniform_(-0.5, 0.5)
    mask = torch.rand(2, 1, 23, 19) > 0.7
    x = torch.where(mask, torch.randn(2, 6, 23, 19), 0.0)
    indices = mask[:, 0].nonzero().int().contiguous()                  # (batch, row, col), C-contiguous for spconv
    tensor = spconv.SparseConvTensor(x.permute(0, 2, 3, 1)[mask[:, 0]], indices, [23, 19], 2)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)          # spconv 2.3.8's CPU rule-book kernels race with several threads
    try:
        expect = _spconv_unet_forward(spconv, unet, tensor, training)
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(expect.indices.long(), indices.long())
    out = unet(x, mask)
    torch.testing.assert_close(out.permute(0, 2, 3, 1)[mask[:, 0]], expect.features, atol=1e-4, rtol=1e-4)
