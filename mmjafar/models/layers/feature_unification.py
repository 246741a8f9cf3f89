"""AnyUp's feature-agnostic input layer: any number of feature channels to a fixed width, with one shared basis."""
import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

#: Default working-set budget of one chunk of basis responses, in elements (64 MiB in float32).
DEFAULT_CHUNK_ELEMENTS = 1 << 24


def gaussian_derivative_basis(num_filters: int, kernel_size: int) -> torch.Tensor:
    """``(num_filters, 1, k, k)`` 2-D Gaussian derivative filters, lowest total order first.

    With ``z = x / sigma``, ``sigma = (k // 2) / 1.645`` and the Gaussian ``g(z) = exp(-z^2 / 2) / (sigma sqrt(2 pi))``,
    the 1-D filter of order ``n`` is ``(-1)^n He_n(z) g(z)`` (``He`` the probabilists' Hermite polynomials). The
    2-D filters of total order ``o`` are the outer products of orders ``(o - i, i)``, ``i = 0 .. o``; orders are
    added until ``num_filters`` filters exist and the list is cut there.
    """
    if kernel_size % 2 == 0:
        raise ValueError(f'gaussian_derivative_basis needs an odd kernel size, got {kernel_size}')
    order = 0
    while (order + 1) * (order + 2) // 2 < num_filters:
        order += 1
    sigma = (kernel_size // 2) / 1.645
    z = torch.arange(-(kernel_size // 2), kernel_size // 2 + 1, dtype=torch.float32) / sigma
    gauss = torch.exp(-0.5 * z**2) / (sigma * math.sqrt(2.0 * math.pi))
    hermite = [torch.ones_like(z), z]
    for n in range(1, order):
        hermite.append(z * hermite[n] - n * hermite[n - 1])
    filters_1d = [(-1)**n * hermite[n] * gauss for n in range(order + 1)]
    filters = [torch.outer(filters_1d[o - i], filters_1d[i]) for o in range(order + 1) for i in range(o + 1)]
    return torch.stack(filters[:num_filters])[:, None]


class LearnedFeatureUnification(nn.Module):
    """Maps ``(B, C, h, w)`` features of any width ``C`` to ``(B, out_channels, h, w)`` (AnyUp's first key layer).

    Every input channel is filtered (zero padding, depthwise) with each of ``out_channels`` learnt ``k x k``
    filters ``basis``; responses are divided by the number of taps inside the map. With the flat index
    ``f = channel * out_channels + filter`` the official layer reshapes the ``out_channels * C`` responses to
    ``(out_channels, C)`` *row-major over f* (entry ``[a, j]`` is ``f = a * C + j``), softmaxes over ``a`` and
    averages over ``j``. That view mixes channels and filters unless ``C`` is a multiple of ``out_channels``
    squared, and the released checkpoints were trained with it, so this module reproduces it exactly.

    Memory: the official layer holds all ``out_channels * C * h * w`` responses at once (400 MB per image for 768
    channels on a 32x32 grid in float32). Here the columns ``j`` are processed in chunks (each needs all ``a``):
    when ``C`` is a multiple of ``out_channels`` (384, 768, 1024 with 128 filters) a chunk is one depthwise
    convolution of ``out_channels`` channels, otherwise the pairs of a chunk are gathered; the batch is split
    when one image exceeds ``chunk_elements``. The result is the same.

    Args:
        out_channels: number of filters and of output channels.
        kernel_size: filter size (odd).
        init_gaussian_derivatives: initialise the filters with :func:`gaussian_derivative_basis` instead of
            standard normal values.
        chunk_elements: working-set budget of one chunk of responses in elements.
    """

    def __init__(self, out_channels: int, kernel_size: int = 3, init_gaussian_derivatives: bool = False,
                 chunk_elements: Optional[int] = None) -> None:
        super().__init__()
        if kernel_size % 2 == 0:
            raise ValueError(f'LearnedFeatureUnification needs an odd kernel_size, got {kernel_size}')
        self.out_channels, self.kernel_size = out_channels, kernel_size
        self.chunk_elements = chunk_elements
        basis = (gaussian_derivative_basis(out_channels, kernel_size) if init_gaussian_derivatives else
                 torch.randn(out_channels, 1, kernel_size, kernel_size))
        self.basis = nn.Parameter(basis)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """``(B, C, h, w) -> (B, out_channels, h, w)``."""
        b, c, h, w = features.shape
        n, pad = self.out_channels, self.kernel_size // 2
        ones = features.new_ones(1, 1, h, w)
        taps = F.conv2d(F.pad(ones, (pad, pad, pad, pad)), ones.new_ones(1, 1, self.kernel_size, self.kernel_size))
        budget = DEFAULT_CHUNK_ELEMENTS if self.chunk_elements is None else self.chunk_elements
        batch = max(1, budget // (n * n * h * w))
        return torch.cat([self._unify(features[s:s + batch], taps, budget) for s in range(0, b, batch)]) / c

    def _unify(self, features: torch.Tensor, taps: torch.Tensor, budget: int) -> torch.Tensor:
        """Sum over ``j`` of the softmax over ``a`` (see the class doc) for a slice of the batch."""
        b, c, h, w = features.shape
        n, pad = self.out_channels, self.kernel_size // 2
        padded = F.pad(features, (pad, pad, pad, pad))
        total = features.new_zeros(b, n, h, w)
        if c % n == 0:
            # C = m * n: column j = t * n + o holds channel a * m + t filtered with basis o, so chunk t is one
            # depthwise convolution of the channels t, t + m, ... with all n filters, nothing wasted
            m = c // n
            basis = self.basis.repeat(n, 1, 1, 1)
            for t in range(m):
                response = F.conv2d(padded[:, t::m], basis, groups=n) / taps
                total = total + response.view(b, n, n, h, w).softmax(dim=1).sum(dim=2)
            return total
        # general C: gather the (channel, filter) pair of every entry [a, j] of a chunk of columns j
        step = max(1, min(c, budget // max(1, b * n * h * w)))
        rows = torch.arange(n, device=features.device)[:, None] * c  # flat index a * C (+ j)
        for j0 in range(0, c, step):
            flat = (rows + torch.arange(j0, min(c, j0 + step), device=features.device)[None]).flatten()
            response = F.conv2d(padded[:, flat // n], self.basis[flat % n], groups=flat.numel()) / taps
            total = total + response.view(b, n, -1, h, w).softmax(dim=1).sum(dim=2)
        return total

    def extra_repr(self) -> str:
        return f'out_channels={self.out_channels}, kernel_size={self.kernel_size}'
