"""PointBeV's sparse ResNet UNet and sparse heads, emulated with masked dense tensors.

PointBeV runs its BEV network with spconv (submanifold and strided sparse convolutions over the selected cells).
spconv's CUDA wheels are not part of this project's environment, so this module is the implementation on every
device: a *masked dense* emulation on the full BEV grid. A feature map ``x`` ``(B, C, H, W)`` travels with a
boolean ``mask`` ``(B, 1, H, W)`` of active cells, and every layer keeps ``x == 0`` outside the mask:

* submanifold convolution (:class:`SubMConv2d`): bias-free dense convolution of the masked input, outputs kept at
  active cells only (exactly spconv's ``SubMConv2d``: active outputs read active inputs only);
* strided sparse max-pool (:class:`SparseMaxPool2d`): dense max-pool with inactive cells at ``-inf``; the pooled
  mask is the max-pooled mask (a coarse cell is active when any cell of its window is);
* inverse convolution (:class:`SparseInverseConv2d`): transposed convolution from the pooled level back onto the
  active cells of the level it was pooled from (spconv's ``SparseInverseConv2d`` with the pool's indices);
* normalisation statistics over active cells only (:class:`MaskedBatchNorm2d`, :class:`MaskedInstanceNorm2d`),
  as BatchNorm1d / per-sample norms over sparse feature rows.

The result equals the sparse computation at active cells (up to float summation order); it costs a dense pass over
the grid, so it saves none of spconv's compute, only its dependency. ``tests/test_bev/test_pointbev.py`` checks the
layers against hand-written rule books and, where ``spconv`` is importable, the whole UNet against spconv 2.3.8
(checked on CPU, one thread: its CPU rule-book kernels race with several threads; its 1×1 SubM path reads the
weight buffer as an ``(in, out)`` matrix; its max-pool returns 0 rather than a negative maximum, which never
occurs here because every pool follows a ReLU). With every cell active (PointBeV's dense
validation) it is an ordinary dense network. Topology of :class:`SparseResNetUNet` (SimpleBEV's ResNet-18 UNet as
PointBeV made it sparse): SubM 7×7 -> 64, two basic blocks per level at 64 / 128 / 256 channels, each level
followed by a 3×3 / 2 sparse max-pool, then three inverse-conv + BN + skip-add steps back to the input channels.
"""
from typing import Dict, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from mmjafar.registry import MODELS

Masked = Tuple[torch.Tensor, torch.Tensor]


def _check_mask(x: torch.Tensor, mask: torch.Tensor) -> None:
    if mask.dtype != torch.bool or mask.dim() != 4 or mask.shape[1] != 1 or mask.shape[0] != x.shape[0] \
            or mask.shape[2:] != x.shape[2:]:
        raise ValueError(f'masked layers need a bool mask (B, 1, H, W) matching x {tuple(x.shape)}, got '
                         f'{mask.dtype} {tuple(mask.shape)}')


def apply_mask(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Zero ``x`` outside the active cells (``torch.where``, so non-finite values there do not leak)."""
    return torch.where(mask, x, torch.zeros((), dtype=x.dtype, device=x.device))


class SubMConv2d(nn.Conv2d):
    """Submanifold convolution (stride 1, 'same' padding, bias-free by default) on a masked dense map.

    ``forward(x, mask)``: ``(B, C_in, H, W), (B, 1, H, W) -> (B, C_out, H, W)``, zero at inactive cells; the
    value at an active cell depends only on active cells of its window.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, bias: bool = False) -> None:
        if kernel_size % 2 == 0:
            raise ValueError(f'SubMConv2d: kernel_size must be odd, got {kernel_size}')
        super().__init__(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=bias)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        _check_mask(x, mask)
        return apply_mask(super().forward(apply_mask(x, mask)), mask)


class MaskedBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm whose batch statistics (and running averages) use active cells only: the BatchNorm1d over the
    rows of a sparse feature matrix. ``forward(x, mask)``; outputs are zero at inactive cells."""

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        _check_mask(x, mask)
        use_batch_stats = self.training or not self.track_running_stats
        if not use_batch_stats:
            mean, var = self.running_mean, self.running_var
        else:
            weight = mask.to(x.dtype)
            count = weight.sum().clamp_min(1.0)       # no host sync: an empty selection normalises nothing
            mean = (x * weight).sum(dim=(0, 2, 3)) / count
            var = ((x - mean.view(1, -1, 1, 1)).square() * weight).sum(dim=(0, 2, 3)) / count
            if self.training and self.track_running_stats:
                with torch.no_grad():
                    self.num_batches_tracked.add_(1)
                    momentum = (1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum)
                    self.running_mean.mul_(1 - momentum).add_(mean.detach(), alpha=momentum)
                    unbiased = var.detach() * (count / (count - 1).clamp_min(1.0))
                    self.running_var.mul_(1 - momentum).add_(unbiased, alpha=momentum)
        out = (x - mean.view(1, -1, 1, 1)) * torch.rsqrt(var.view(1, -1, 1, 1) + self.eps)
        if self.affine:
            out = out * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)
        return apply_mask(out, mask)


class MaskedInstanceNorm2d(nn.Module):
    """Per-sample, per-channel normalisation over the active cells of each sample (InstanceNorm2d restricted to
    the mask, optional per-channel affine). ``forward(x, mask)``; zero at inactive cells and for empty samples."""

    def __init__(self, num_features: int, eps: float = 1e-5, affine: bool = True) -> None:
        super().__init__()
        self.num_features = num_features
        self.eps = eps
        self.affine = affine
        if affine:
            self.weight = nn.Parameter(torch.ones(num_features))
            self.bias = nn.Parameter(torch.zeros(num_features))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        _check_mask(x, mask)
        weight = mask.to(x.dtype)
        count = weight.sum(dim=(2, 3), keepdim=True).clamp_min(1.0)
        mean = (x * weight).sum(dim=(2, 3), keepdim=True) / count
        var = ((x - mean).square() * weight).sum(dim=(2, 3), keepdim=True) / count
        out = (x - mean) * torch.rsqrt(var + self.eps)
        if self.affine:
            out = out * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)
        return apply_mask(out, mask)

    def extra_repr(self) -> str:
        return f'{self.num_features}, eps={self.eps}, affine={self.affine}'


class SparseMaxPool2d(nn.Module):
    """Strided sparse max-pool: ``(x, mask) -> (pooled x, pooled mask)``; a window's maximum is taken over its
    active cells only, and an output cell is active when its window holds an active cell."""

    def __init__(self, kernel_size: int = 3, stride: int = 2) -> None:
        super().__init__()
        self.kernel_size, self.stride = kernel_size, stride

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> Masked:
        _check_mask(x, mask)
        pad = self.kernel_size // 2
        low = torch.finfo(x.dtype).min
        pooled = F.max_pool2d(torch.where(mask, x, torch.full((), low, dtype=x.dtype, device=x.device)),
                              self.kernel_size, self.stride, pad)
        pooled_mask = F.max_pool2d(mask.to(x.dtype), self.kernel_size, self.stride, pad) > 0
        return apply_mask(pooled, pooled_mask), pooled_mask


class SparseInverseConv2d(nn.Module):
    """Inverse of a ``kernel_size`` / 2 sparse pool: a bias-free transposed convolution from the pooled level onto
    the active cells of the finer level (``forward(x, fine_mask)``)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 2) -> None:
        super().__init__()
        self.kernel_size, self.stride = kernel_size, stride
        self.weight = nn.Parameter(torch.empty(in_channels, out_channels, kernel_size, kernel_size))
        nn.init.kaiming_uniform_(self.weight, a=5 ** 0.5)

    def forward(self, x: torch.Tensor, fine_mask: torch.Tensor) -> torch.Tensor:
        height, width = fine_mask.shape[-2:]
        pad = self.kernel_size // 2
        out_pad = [size - ((small - 1) * self.stride - 2 * pad + self.kernel_size)
                   for size, small in zip((height, width), x.shape[-2:])]
        if min(out_pad) < 0 or max(out_pad) >= self.stride:
            raise ValueError(f'SparseInverseConv2d: cannot map {tuple(x.shape[-2:])} back onto {(height, width)} '
                             f'with stride {self.stride}; pair it with the pool that produced x')
        out = F.conv_transpose2d(x, self.weight, stride=self.stride, padding=pad, output_padding=tuple(out_pad))
        return apply_mask(out, fine_mask)


class SparseBasicBlock(nn.Module):
    """ResNet basic block on masked maps: SubM 3×3 + BN + ReLU, SubM 3×3 + BN, shortcut (identity, or SubM 1×1 +
    BN when the width changes), add, ReLU."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv1 = SubMConv2d(in_channels, out_channels, 3)
        self.bn1 = MaskedBatchNorm2d(out_channels)
        self.conv2 = SubMConv2d(out_channels, out_channels, 3)
        self.bn2 = MaskedBatchNorm2d(out_channels)
        if in_channels != out_channels:
            self.shortcut_conv: Optional[SubMConv2d] = SubMConv2d(in_channels, out_channels, 1)
            self.shortcut_bn: Optional[MaskedBatchNorm2d] = MaskedBatchNorm2d(out_channels)
        else:
            self.shortcut_conv = self.shortcut_bn = None

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x, mask), mask))
        out = self.bn2(self.conv2(out, mask), mask)
        identity = x if self.shortcut_conv is None else self.shortcut_bn(self.shortcut_conv(x, mask), mask)
        return F.relu(out + identity)


class SparseUpAdd(nn.Module):
    """Decoder step: inverse conv to the finer level + BN, then add that level's skip features."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.up = SparseInverseConv2d(in_channels, out_channels, 3, 2)
        self.bn = MaskedBatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor, skip: torch.Tensor, fine_mask: torch.Tensor) -> torch.Tensor:
        return self.bn(self.up(x, fine_mask), fine_mask) + skip


@MODELS.register_module()
class SparseResNetUNet(nn.Module):
    """PointBeV's sparse ResNet UNet on a masked dense BEV map (see the module docstring for the emulation).

    ``forward(x, mask)``: ``(B, in_channels, H, W)`` features that are zero outside ``mask`` ``(B, 1, H, W)`` ->
    ``(B, in_channels, H, W)`` features at the same active cells (zero elsewhere). Levels (channels, stride):
    stem SubM 7×7 -> base (1), blocks at base (1) -> pool -> 2·base (2) -> pool -> 4·base (4) -> pool (8), then
    inverse conv + BN + skip-add to 2·base (4), base (2) and in_channels (1, added to the input).

    Args:
        in_channels: channels of the lifted BEV features (and of the output).
        base_channels: width of the first level (64).
        blocks_per_level: basic blocks per level (2).
    """

    def __init__(self, in_channels: int = 128, base_channels: int = 64, blocks_per_level: int = 2) -> None:
        super().__init__()
        if min(in_channels, base_channels, blocks_per_level) < 1:
            raise ValueError('SparseResNetUNet: channels and blocks_per_level must be positive, got '
                             f'{in_channels}, {base_channels}, {blocks_per_level}')
        self.in_channels = self.out_channels = in_channels
        widths = (base_channels, 2 * base_channels, 4 * base_channels)
        self.stem = SubMConv2d(in_channels, base_channels, 7)
        self.stem_bn = MaskedBatchNorm2d(base_channels)
        self.levels = nn.ModuleList()
        prev = base_channels
        for width in widths:
            blocks = [SparseBasicBlock(prev if i == 0 else width, width) for i in range(blocks_per_level)]
            self.levels.append(nn.ModuleList(blocks))
            prev = width
        self.pool = SparseMaxPool2d(3, 2)
        self.ups = nn.ModuleList([SparseUpAdd(widths[2], widths[1]), SparseUpAdd(widths[1], widths[0]),
                                  SparseUpAdd(widths[0], in_channels)])

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        _check_mask(x, mask)
        if x.shape[1] != self.in_channels:
            raise ValueError(f'SparseResNetUNet: expected {self.in_channels} input channels, got {x.shape[1]}')
        x = apply_mask(x, mask)
        skips = [(x, mask)]
        feats = F.relu(self.stem_bn(self.stem(x, mask), mask))
        for index, blocks in enumerate(self.levels):
            for block in blocks:
                feats = block(feats, mask)
            feats, mask = self.pool(feats, mask)
            if index < len(self.levels) - 1:
                skips.append((feats, mask))
        for up, (skip, skip_mask) in zip(self.ups, reversed(skips)):
            feats = up(feats, skip, skip_mask)
        return feats


class SparseHeadBranch(nn.Module):
    """One sparse head: SubM 3×3 (bias-free) + masked InstanceNorm (affine, as the dense ``BEVHead``) + ReLU +
    1×1 conv with bias."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = SubMConv2d(in_channels, in_channels, 3)
        self.norm = MaskedInstanceNorm2d(in_channels)
        self.out = nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return apply_mask(self.out(F.relu(self.norm(self.conv(x, mask), mask))), mask)


@MODELS.register_module()
class SparseBEVHead(nn.Module):
    """SimpleBEV's heads made submanifold: ``forward(x, mask) -> dict(seg=(B, 1, H, W) logits,
    centerness=(B, 1, H, W) logits, offset=(B, 2, H, W))``, zero at inactive cells.

    Args:
        in_channels: BEV feature channels (128).
        outputs: name -> channels of each branch.
    """

    def __init__(self, in_channels: int = 128,
                 outputs: Optional[Dict[str, int]] = None) -> None:
        super().__init__()
        outputs = dict(seg=1, centerness=1, offset=2) if outputs is None else dict(outputs)
        if 'seg' not in outputs:
            raise ValueError(f'SparseBEVHead: outputs must include "seg", got {sorted(outputs)}')
        self.branches = nn.ModuleDict({name: SparseHeadBranch(in_channels, ch) for name, ch in outputs.items()})

    @property
    def output_names(self) -> Sequence[str]:
        return tuple(self.branches.keys())

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> Dict[str, torch.Tensor]:
        return {name: branch(x, mask) for name, branch in self.branches.items()}
