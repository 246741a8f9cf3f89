"""Fused CPU inference of pointwise ``GroupNorm -> SiLU -> 1x1 conv`` encoders (JAFAR's full-resolution encoders).

JAFAR's image, query and key encoders are a 1x1 convolution followed by :class:`~.conv_blocks.ResBlock` s whose
convolutions are 1x1 too, so everything except the GroupNorm statistics is per pixel. Run layer by layer, each
block writes and re-reads about ten full-resolution maps (GroupNorm output, SiLU, convolution, residual sum), and on
CPU every fresh full-size tensor also pays its page faults. Here the map is a ``(B, H*W, C)`` token matrix
(channels-last memory, so no copy) processed in chunks of tokens that stay in cache:

* pass A of a block: ``y = silu(x * a1 + b1) @ W1^T`` written chunk by chunk, and the per-channel sums and sums of
  squares of ``y`` accumulated on the way (the next GroupNorm's statistics, so no separate statistics pass);
* pass B: ``out = silu(y * a2 + b2) @ W2^T + x``, written over the input's own buffer when it is ours (else over
  ``y``), again with the statistics of ``out`` for the next block.

``a``, ``b`` are the GroupNorm's normalisation and affine folded into one per-channel scale and shift (as torch's
own channels-last GroupNorm kernel does), with the group statistics combined in float64 across chunks. A whole
encoder thus allocates two full-size maps and reads or writes each about twice per block. The result equals the
layer-by-layer computation up to float rounding (about 1e-6 relative); the tests compare both.

Used automatically by :func:`~.conv_blocks.run_layers`, :func:`~.conv_blocks.encode_and_pool_many` and
:meth:`~.conv_blocks.ResBlock.branch_before_conv2` when :func:`fusable` holds (CPU, float32/float64, no autograd,
no autocast, pointwise layers); everything else takes the layer-by-layer path. Only torch operations are used: no
compiler is needed (see the README's benchmark section for the measured alternatives).
"""
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

#: Elements of one chunk of tokens (``tokens * channels``; 8 MiB in float32): small enough for the caches, large
#: enough that the per-chunk operations stay few (each is one parallel region; see the README benchmark notes).
CHUNK_ELEMENTS = 1 << 21
#: Set to False to disable the fused path (e.g. to compare against the layer-by-layer one).
ENABLED = True


def is_pointwise_conv(module: nn.Module) -> bool:
    """A plain 1x1 convolution (no padding, stride, dilation or groups): a matrix product per pixel."""
    return (isinstance(module, nn.Conv2d) and module.kernel_size == (1, 1) and module.stride == (1, 1)
            and module.padding in ((0, 0), 'valid') and module.dilation == (1, 1) and module.groups == 1)


def _is_pointwise_block(module: nn.Module) -> bool:
    from .conv_blocks import ResBlock
    if not isinstance(module, ResBlock):
        return False
    parts_ok = all(is_pointwise_conv(getattr(module, n)) for n in ('conv1', 'conv2'))
    norms_ok = all(isinstance(getattr(module, n), nn.GroupNorm) for n in ('norm1', 'norm2'))
    shortcut = module._modules.get('shortcut')
    return parts_ok and norms_ok and (shortcut is None or is_pointwise_conv(shortcut))


def fusable(layers: Sequence[nn.Module], x: torch.Tensor) -> bool:
    """Whether :func:`fused_run_layers` applies: CPU float32/float64 input without autograd or autocast, and every
    layer a 1x1 convolution or a :class:`~.conv_blocks.ResBlock` of 1x1 convolutions."""
    if not (ENABLED and len(layers) and x.dim() == 4 and x.device.type == 'cpu'
            and x.dtype in (torch.float32, torch.float64)):
        return False
    if torch.is_autocast_enabled('cpu'):
        return False
    if not all(is_pointwise_conv(m) or _is_pointwise_block(m) for m in layers):
        return False
    if any(p.dtype != x.dtype for m in layers for p in m.parameters()):
        return False
    if torch.is_grad_enabled() and (x.requires_grad or any(p.requires_grad for m in layers for p in m.parameters())):
        return False
    return True


def _matrix(conv: nn.Conv2d) -> torch.Tensor:
    """``(Cin, Cout)`` view of a 1x1 convolution's weight (transposed: ``tokens @ matrix``)."""
    return conv.weight.view(conv.weight.shape[0], conv.weight.shape[1]).t()


class _Map:
    """A ``(B, N, C)`` token matrix of a ``(B, C, H, W)`` map, with optional per-channel sums for a GroupNorm."""

    def __init__(self, tokens: torch.Tensor, height: int, width: int, owned: bool) -> None:
        self.tokens, self.height, self.width, self.owned = tokens, height, width, owned
        self.sums: Optional[Tuple[torch.Tensor, torch.Tensor]] = None  # float64 (B, C) sum, sum of squares

    @property
    def channels(self) -> int:
        return self.tokens.shape[-1]

    def as_map(self) -> torch.Tensor:
        b, _, c = self.tokens.shape
        return self.tokens.view(b, self.height, self.width, c).permute(0, 3, 1, 2)


def _to_tokens(x: torch.Tensor) -> _Map:
    b, c, h, w = x.shape
    t = x.permute(0, 2, 3, 1)
    if not t.is_contiguous():
        t = t.contiguous()  # one copy into channels-last layout
    return _Map(t.view(b, h * w, c), h, w, owned=False)


class _StatsAccumulator:
    """Per-channel sums and sums of squares of chunks: two reductions per chunk in the input dtype (one parallel
    region each), combined across chunks in float64 at the end."""

    def __init__(self, batch: int, channels: int, device) -> None:
        self.parts = [([], []) for _ in range(batch)]
        self.channels, self.device = channels, device

    def add(self, b: int, chunk: torch.Tensor) -> None:
        self.parts[b][0].append(chunk.sum(0))
        self.parts[b][1].append(torch.mul(chunk, chunk).sum(0))  # (vector_norm over dim 0 or pow are slower)

    def result(self) -> Tuple[torch.Tensor, torch.Tensor]:
        s1 = torch.stack([torch.stack(p1).double().sum(0) for p1, _ in self.parts])
        s2 = torch.stack([torch.stack(p2).double().sum(0) for _, p2 in self.parts])
        return s1, s2


def group_norm_scale_shift(norm: nn.GroupNorm, sums: Tuple[torch.Tensor, torch.Tensor], count: int,
                           dtype: torch.dtype) -> Tuple[torch.Tensor, torch.Tensor]:
    """Per-(batch, channel) ``scale``, ``shift`` with ``GroupNorm(x) = x * scale + shift``, from per-channel sums
    and sums of squares of ``x`` over ``count`` positions (float64 arithmetic)."""
    s1, s2 = sums
    b, c = s1.shape
    g = norm.num_groups
    n = count * (c // g)
    mean = s1.view(b, g, -1).sum(-1) / n
    var = (s2.view(b, g, -1).sum(-1) / n - mean * mean).clamp_min(0)
    rstd = torch.rsqrt(var + norm.eps)  # (B, G)
    scale = rstd.repeat_interleave(c // g, dim=1)
    shift = -(mean.repeat_interleave(c // g, dim=1)) * scale
    if norm.affine:
        weight, bias = norm.weight.double(), norm.bias.double()
        scale, shift = scale * weight, shift * weight + bias
    return scale.to(dtype), shift.to(dtype)


class _Runner:
    """Runs pointwise layers over token chunks, keeping at most two full-size buffers of its own."""

    def __init__(self, x: torch.Tensor, chunk_elements: Optional[int] = None) -> None:
        self.map = _to_tokens(x)
        self.batch = x.shape[0]
        self.count = x.shape[2] * x.shape[3]
        self.chunk_elements = CHUNK_ELEMENTS if chunk_elements is None else chunk_elements
        self.free: List[torch.Tensor] = []

    # buffers ---------------------------------------------------------------------------------------------------
    def _buffer(self, channels: int) -> torch.Tensor:
        for i, buf in enumerate(self.free):
            if buf.shape[-1] == channels:
                return self.free.pop(i)
        t = self.map.tokens
        return t.new_empty(self.batch, self.count, channels)

    def _release(self, m: _Map) -> None:
        if m.owned:
            self.free.append(m.tokens)

    def _chunks(self, channels: int):
        step = max(1, self.chunk_elements // max(1, channels))
        for b in range(self.batch):
            for s in range(0, self.count, step):
                yield b, slice(s, min(self.count, s + step))

    def _ensure_sums(self, m: _Map) -> None:
        if m.sums is None:
            acc = _StatsAccumulator(self.batch, m.channels, m.tokens.device)
            for b, rows in self._chunks(m.channels):
                acc.add(b, m.tokens[b, rows])
            m.sums = acc.result()

    def _scale_shift(self, norm: nn.GroupNorm, m: _Map):
        self._ensure_sums(m)
        return group_norm_scale_shift(norm, m.sums, self.count, m.tokens.dtype)

    # layers ------------------------------------------------------------------------------------------------------
    def conv(self, conv: nn.Conv2d, stats: bool) -> None:
        src = self.map
        w = _matrix(conv)
        out = _Map(self._buffer(w.shape[1]), src.height, src.width, owned=True)
        acc = _StatsAccumulator(self.batch, w.shape[1], w.device) if stats else None
        for b, rows in self._chunks(max(src.channels, w.shape[1])):
            dst = out.tokens[b, rows]
            if conv.bias is None:
                torch.mm(src.tokens[b, rows], w, out=dst)
            else:
                torch.addmm(conv.bias, src.tokens[b, rows], w, out=dst)
            if acc is not None:
                acc.add(b, dst)
        out.sums = None if acc is None else acc.result()
        self._release(src)
        self.map = out

    def _norm_act(self, dst: torch.Tensor, src: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor):
        torch.addcmul(shift, src, scale, out=dst)
        return F.silu(dst, inplace=True)

    def block(self, block: nn.Module, stats: bool, pool_branch: bool = False) -> None:
        """One :class:`ResBlock`. ``pool_branch``: stop before ``conv2`` and leave ``silu(norm2(conv1(...)))``
        as the current map (:meth:`ResBlock.branch_before_conv2`)."""
        x = self.map
        scale1, shift1 = self._scale_shift(block.norm1, x)
        w1, w2 = _matrix(block.conv1), _matrix(block.conv2)
        mid = w1.shape[1]
        y = _Map(self._buffer(mid), x.height, x.width, owned=True)
        step_channels = max(x.channels, mid, w2.shape[1])
        acc = _StatsAccumulator(self.batch, mid, w1.device)
        h_buf = x.tokens.new_empty(max(1, self.chunk_elements // step_channels), max(x.channels, mid))
        for b, rows in self._chunks(step_channels):
            n = rows.stop - rows.start
            h = self._norm_act(h_buf[:n, :x.channels], x.tokens[b, rows], scale1[b], shift1[b])
            dst = y.tokens[b, rows]
            if block.conv1.bias is None:
                torch.mm(h, w1, out=dst)
            else:
                torch.addmm(block.conv1.bias, h, w1, out=dst)
            acc.add(b, dst)
        y.sums = acc.result()
        scale2, shift2 = group_norm_scale_shift(block.norm2, y.sums, self.count, y.tokens.dtype)
        if pool_branch:
            for b, rows in self._chunks(mid):
                self._norm_act(y.tokens[b, rows], y.tokens[b, rows], scale2[b], shift2[b])
            y.sums = None
            self._release(x)
            self.map = y
            return
        shortcut = block._modules.get('shortcut') if block.is_residual else None
        in_place = block.is_residual and shortcut is None and x.owned
        out = x if in_place else y
        acc = _StatsAccumulator(self.batch, w2.shape[1], w2.device) if stats else None
        for b, rows in self._chunks(step_channels):
            n = rows.stop - rows.start
            h = self._norm_act(h_buf[:n, :mid], y.tokens[b, rows], scale2[b], shift2[b])
            dst = out.tokens[b, rows]  # y's chunk is consumed (h holds it), so it may be overwritten
            if in_place:
                dst.addmm_(h, w2)
            elif shortcut is not None:
                if shortcut.bias is None:
                    torch.mm(x.tokens[b, rows], _matrix(shortcut), out=dst)
                else:
                    torch.addmm(shortcut.bias, x.tokens[b, rows], _matrix(shortcut), out=dst)
                dst.addmm_(h, w2)
            elif block.is_residual:
                torch.addmm(x.tokens[b, rows], h, w2, out=dst)
            else:
                torch.mm(h, w2, out=dst)
            if block.conv2.bias is not None:
                dst.add_(block.conv2.bias)
            if acc is not None:
                acc.add(b, dst)
        out.sums = None if acc is None else acc.result()
        if in_place:
            self._release(y)
        else:
            self._release(x)
        self.map = out


def fused_run_layers(layers: Sequence[nn.Module], x: torch.Tensor, pool_branch: bool = False,
                     chunk_elements: Optional[int] = None) -> torch.Tensor:
    """``layers`` applied to ``x`` ``(B, C, H, W)`` by the fused passes; returns a channels-last map.

    Requires :func:`fusable`. ``pool_branch``: the last layer is a block run only up to its ``conv2`` (see
    :meth:`~.conv_blocks.ResBlock.branch_before_conv2`).
    """
    from .conv_blocks import ResBlock
    runner = _Runner(x, chunk_elements)
    for i, layer in enumerate(layers):
        last = i + 1 == len(layers)
        stats = not last and isinstance(layers[i + 1], ResBlock)
        if isinstance(layer, ResBlock):
            runner.block(layer, stats, pool_branch=pool_branch and last)
        else:
            runner.conv(layer, stats)
    out = runner.map
    if not out.owned:  # no layer ran: keep run_layers' semantics of returning the input
        return x
    return out.as_map()


__all__ = ['fusable', 'fused_run_layers', 'group_norm_scale_shift', 'is_pointwise_conv']
