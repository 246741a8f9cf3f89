"""Convolutional building blocks of the JAFAR-family image and feature encoders."""
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from .fused_block import pointwise_block, pointwise_block_fusable, pointwise_pool_block
from .fused_encoder import fusable, fused_run_layers
from .fused_norm_act import norm_act_conv, norm_act_conv_fusable, norm_act_pool, norm_act_pool_fusable


class ResBlock(nn.Module):
    """Pre-activation block: ``conv2(act(norm2(conv1(act(norm1(x))))))``, plus ``x`` (or ``shortcut(x)``) if residual.

    Parameter names follow the official code of each method so its checkpoints load unchanged:

    * ``layout='named'`` (JAFAR, NAF): ``norm1``, ``conv1``, ``norm2``, ``conv2`` and ``shortcut``.
    * ``layout='sequential'`` (AnyUp): one ``nn.Sequential`` named ``block`` holding
      ``(norm1, SiLU, conv1, norm2, SiLU, conv2)`` at indices 0 to 5 (keys ``block.0`` ... ``block.5``); the
      attributes ``norm1`` ... ``conv2`` still name those layers.

    Padding keeps the spatial size.

    Args:
        in_channels: input channels.
        out_channels: output channels (a 1x1 ``shortcut`` projection is added when they differ and the block is
            residual).
        kernel_size: kernel of both convolutions.
        num_groups: groups of the two GroupNorms.
        pad_mode: ``padding_mode`` of the convolutions ('zeros', 'reflect', ...).
        bias: whether the convolutions have biases (NAF: True; JAFAR, AnyUp: False).
        residual: add the input (JAFAR, AnyUp: True); NAF's encoder blocks are not residual.
        layout: parameter naming, 'named' or 'sequential' (see above).
    """

    _SEQUENTIAL_INDEX = {'norm1': 0, 'conv1': 2, 'norm2': 3, 'conv2': 5}

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 1, num_groups: int = 8,
                 pad_mode: str = 'reflect', bias: bool = False, residual: bool = True,
                 layout: str = 'named') -> None:
        super().__init__()
        if layout not in ('named', 'sequential'):
            raise ValueError(f"ResBlock layout must be 'named' or 'sequential', got {layout!r}")
        pad = kernel_size // 2
        # padding_mode only matters when there is padding: with a 1x1 kernel 'reflect' would still run a
        # zero-width padding kernel that copies the whole map (same math and keys with 'zeros').
        pad_mode = pad_mode if pad else 'zeros'
        norm1 = nn.GroupNorm(num_groups, in_channels)
        conv1 = nn.Conv2d(in_channels, out_channels, kernel_size, padding=pad, padding_mode=pad_mode, bias=bias)
        norm2 = nn.GroupNorm(num_groups, out_channels)
        conv2 = nn.Conv2d(out_channels, out_channels, kernel_size, padding=pad, padding_mode=pad_mode, bias=bias)
        if layout == 'named':
            self.norm1, self.conv1, self.norm2, self.conv2 = norm1, conv1, norm2, conv2
        else:
            self.block = nn.Sequential(norm1, nn.SiLU(), conv1, norm2, nn.SiLU(), conv2)
        self.is_residual = residual
        if residual and in_channels != out_channels:
            self.shortcut = nn.Conv2d(in_channels, out_channels, 1, bias=bias)

    def __getattr__(self, name: str):
        index = ResBlock._SEQUENTIAL_INDEX.get(name)
        if index is not None and 'block' in self.__dict__.get('_modules', {}):
            return self._modules['block'][index]
        return super().__getattr__(name)

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut(x) if hasattr(self, 'shortcut') else x

    def branch_before_conv2(self, x: torch.Tensor) -> torch.Tensor:
        """The residual branch up to (not including) ``conv2``."""
        # in inference the activations overwrite the fresh GroupNorm outputs (no extra full-size map)
        inplace = not torch.is_grad_enabled()
        h = F.silu(self.norm1(x), inplace=inplace)
        return F.silu(self.norm2(self.conv1(h)), inplace=inplace)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv2(self.branch_before_conv2(x))
        return out + self.residual(x) if self.is_residual else out


def make_encoder(in_channels: int, channels: int, kernel_size: int = 1, num_blocks: int = 2,
                 num_groups: int = 8, block_kernel_size: int = 1, bias: bool = False, residual: bool = True,
                 layout: str = 'named', stem: Optional[nn.Module] = None) -> nn.Sequential:
    """``Conv(in -> channels, k, reflect)`` followed by ``num_blocks`` :class:`ResBlock` s.

    The layout (indices 0, 1, 2, ...) is the official JAFAR/AnyUp/NAF encoders', so state-dict keys match.

    Args:
        in_channels: input channels (of ``stem``'s output when a stem is given).
        channels: output channels.
        kernel_size: kernel of the first convolution.
        num_blocks: number of blocks after it.
        num_groups: GroupNorm groups of the blocks.
        block_kernel_size: kernel of the blocks' convolutions (reflect padding).
        bias: biases in every convolution (NAF) or none (JAFAR, AnyUp).
        residual, layout: see :class:`ResBlock`.
        stem: a module used at index 0 instead of the first convolution (AnyUp's feature unification).
    """
    if stem is None:
        pad = kernel_size // 2
        stem = nn.Conv2d(in_channels, channels, kernel_size, padding=pad, padding_mode='reflect' if pad else 'zeros',
                         bias=bias)
        in_channels = channels
    blocks = [ResBlock(in_channels if i == 0 else channels, channels, kernel_size=block_kernel_size,
                       num_groups=num_groups, bias=bias, residual=residual, layout=layout)
              for i in range(num_blocks)]
    return nn.Sequential(stem, *blocks)


def _norm_act_conv(x: torch.Tensor, norm: nn.Module, conv: nn.Module) -> torch.Tensor:
    return conv(F.silu(norm(x)))


def _low_memory_norm_act_conv(x: torch.Tensor, norm: nn.Module, conv: nn.Module) -> torch.Tensor:
    """``conv(silu(norm(x)))`` keeping only ``x`` for the backward pass: the fused autograd function for 1x1
    convolutions on CPU (no full-size intermediate maps in its backward either), activation checkpointing
    otherwise."""
    if norm_act_conv_fusable(x, norm, conv):
        return norm_act_conv(x, norm, conv)
    return _checkpoint(_norm_act_conv, x, norm, conv)


def _norm_act_pool(x: torch.Tensor, norm: nn.Module, sizes) -> Tuple[torch.Tensor, ...]:
    h = F.silu(norm(x))
    return tuple(h if tuple(h.shape[-2:]) == tuple(size) else F.adaptive_avg_pool2d(h, size) for size in sizes)


def _checkpoint(fn, *args):
    return checkpoint(fn, *args, use_reentrant=False)


def run_layers(layers, x: torch.Tensor, low_memory: bool = False) -> torch.Tensor:
    """Apply ``layers`` in order; with ``low_memory`` (training), every ``norm -> SiLU -> conv`` group of a
    :class:`ResBlock` keeps only its input for the backward pass and recomputes the rest (activation
    checkpointing at the finest useful grain: two stored maps per block instead of about seven; on CPU with 1x1
    convolutions a fused autograd function whose backward never materialises the group's intermediate maps, and
    for a whole pointwise block with an identity residual one function that stores only the block's input, or
    the input of the 1x1 convolution in front of it, whose output is then recomputed per chunk).
    Without autograd on CPU, pointwise encoders run as chunked fused passes (:mod:`.fused_encoder`)."""
    if not low_memory and fusable(list(layers), x):
        return fused_run_layers(list(layers), x)
    layers, i = list(layers), 0
    while i < len(layers):
        layer, after = layers[i], layers[i + 1] if i + 1 < len(layers) else None
        i += 1
        if low_memory and after is not None and pointwise_block_fusable(x, after, stem=layer):
            x = pointwise_block(x, after, stem=layer)  # the stem's output is recomputed, never stored
            i += 1
        elif low_memory and pointwise_block_fusable(x, layer):
            x = pointwise_block(x, layer)
        elif low_memory and isinstance(layer, ResBlock):
            h = _low_memory_norm_act_conv(x, layer.norm1, layer.conv1)
            out = _low_memory_norm_act_conv(h, layer.norm2, layer.conv2)
            x = out + layer.residual(x) if layer.is_residual else out
        else:
            x = layer(x)
    return x


def encode_and_pool(encoder: nn.Sequential, x: torch.Tensor, size, low_memory: bool = False) -> torch.Tensor:
    """``adaptive_avg_pool2d(encoder(x), size)`` with less work at full resolution.

    When the encoder ends in a :class:`ResBlock` with a 1x1 ``conv2``, average pooling commutes with that
    affine convolution: ``pool(conv2(a) + r) = conv2(pool(a)) + pool(r)`` (``r`` only for residual blocks). The
    last convolution then runs on the pooled grid instead of the full-resolution one (the same math; float
    rounding differs at 1e-7). When ``size`` is the input's size the pooling is skipped (identity).
    ``low_memory``: see :func:`run_layers`. Several sizes at once: :func:`encode_and_pool_many`.
    """
    return encode_and_pool_many(encoder, x, [size], low_memory)[0]


def encode_and_pool_many(encoder: nn.Sequential, x: torch.Tensor, sizes: Sequence, low_memory: bool = False
                         ) -> List[torch.Tensor]:
    """:func:`encode_and_pool` to every size of ``sizes``, running the full-resolution layers once.

    Everything before the pooling (the encoder up to its last ``conv2``) depends only on ``x``; it is computed
    once and pooled to each size, so a multi-level neck asking for several output sizes pays the
    full-resolution encoder once. Each output equals ``encode_and_pool(encoder, x, size)``.
    """
    full = tuple(x.shape[-2:])
    sizes = [tuple(size) for size in sizes]
    *body, last = encoder
    if sizes == [full]:  # pooling to the same size is the identity: skip its copies
        return [run_layers(encoder, x, low_memory)]
    x = run_layers(body, x, low_memory)
    if low_memory and full not in sizes and pointwise_block_fusable(x, last):
        return list(pointwise_pool_block(x, last, sizes))
    if not (isinstance(last, ResBlock) and last.conv2.kernel_size == (1, 1)):
        out = run_layers([last], x, low_memory)
        return [out if size == full else F.adaptive_avg_pool2d(out, size) for size in sizes]
    if low_memory:
        h = _low_memory_norm_act_conv(x, last.norm1, last.conv1)
        pooled = (norm_act_pool(h, last.norm2, sizes) if norm_act_pool_fusable(h, last.norm2, sizes)
                  else _checkpoint(_norm_act_pool, h, last.norm2, sizes))
    else:
        branch = (fused_run_layers([last], x, pool_branch=True) if fusable([last], x)
                  else last.branch_before_conv2(x))
        pooled = [branch if size == full else F.adaptive_avg_pool2d(branch, size) for size in sizes]
    outs = [last.conv2(p) for p in pooled]
    if not last.is_residual:
        return outs
    residual = last.residual(x)
    return [out + (residual if size == full else F.adaptive_avg_pool2d(residual, size))
            for out, size in zip(outs, sizes)]
