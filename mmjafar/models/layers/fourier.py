"""Sinusoidal (Fourier) features of pixel coordinates and colours with learned phases (FeatUp / LoftUp style).

The top frequency is e^10 ~ 22026, so a float32 rounding of the argument of sin/cos is worth ~1e-3 of output.
To reproduce checkpoints trained upstream, these functions keep upstream's float32 operation order exactly:
grid from ``torch.linspace(-1, 1, n)``, frequencies ``torch.exp(torch.linspace(lo, hi, n_freqs))`` in the input's
dtype, ``signals * freqs`` and only then ``+ phase``. Do not "simplify" them.
"""
import torch
from torch import nn


def batch_min_max_scale(x: torch.Tensor, min_range: float = 1e-4) -> torch.Tensor:
    """``(x - min) / max(max - min, min_range) - 0.5`` per channel, with min and max over the whole batch.

    The statistics are shared by all samples of the batch (as upstream's ``MinMaxScaler``): a sample's result
    depends on the other samples. ``(B, C, H, W) -> (B, C, H, W)``.
    """
    flat = x.transpose(0, 1).reshape(x.shape[1], -1)
    low = flat.min(dim=-1).values.view(1, -1, 1, 1)
    span = flat.max(dim=-1).values.view(1, -1, 1, 1) - low
    return (x - low) / span.clamp_min(min_range) - 0.5


class FourierFeatures(nn.Module):
    """``[sin(f * s + phase_sin), cos(f * s + phase_cos), (colours)]`` of the signals ``s`` of every pixel.

    Signals are the two pixel coordinates on ``[-1, 1]`` (row first) followed, with ``color_feats``, by the
    input's channels. Frequencies ``f = exp(linspace(log_min, log_max, n_freqs))``. Output channels are
    frequency-major (``f_index * n_signals + signal``): ``n_freqs * n_signals`` sines, as many cosines, then the
    raw colours when ``color_feats``.

    The learned phases ``biases`` have shape ``(2, n_signals, n_freqs)`` as in the official checkpoints, but
    upstream applies them after a plain reshape to ``(n_freqs, n_signals)`` (no transpose); so does this module.

    Args:
        color_feats: include the input's 3 channels as signals (and append them to the output).
        n_freqs: number of frequencies.
        log_min, log_max: natural-log range of the frequencies (-2 and 10 upstream).
    """

    def __init__(self, color_feats: bool = True, n_freqs: int = 10, log_min: float = -2.0,
                 log_max: float = 10.0) -> None:
        super().__init__()
        self.color_feats = color_feats
        self.n_freqs = n_freqs
        self.log_min, self.log_max = log_min, log_max
        self.n_signals = 5 if color_feats else 2
        self.biases = nn.Parameter(torch.randn(2, self.n_signals, n_freqs))

    @property
    def out_channels(self) -> int:
        return 2 * self.n_freqs * self.n_signals + (3 if self.color_feats else 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W) -> (B, out_channels, H, W)``; only ``x``'s size (and colours) are used."""
        b, _, h, w = x.shape
        rows = torch.linspace(-1, 1, h, device=x.device)
        cols = torch.linspace(-1, 1, w, device=x.device)
        coords = torch.stack(torch.meshgrid(rows, cols, indexing='ij')).unsqueeze(0).expand(b, 2, h, w)
        if self.color_feats:
            if x.shape[1] != 3:
                raise ValueError(f'FourierFeatures(color_feats=True) needs a 3-channel image, got {x.shape[1]}')
            coords = torch.cat([coords, x], dim=1)
        freqs = torch.exp(torch.linspace(self.log_min, self.log_max, self.n_freqs, device=x.device))
        args = coords.unsqueeze(1) * freqs.view(1, -1, 1, 1, 1)  # (B, n_freqs, n_signals, H, W)
        phases = self.biases.reshape(2, 1, self.n_freqs, self.n_signals, 1, 1)
        sin = torch.sin((args + phases[0]).reshape(b, -1, h, w))
        cos = torch.cos((args + phases[1]).reshape(b, -1, h, w))
        return torch.cat([sin, cos, x] if self.color_feats else [sin, cos], dim=1)

    def extra_repr(self) -> str:
        return f'color_feats={self.color_feats}, n_freqs={self.n_freqs}, log_range=({self.log_min}, {self.log_max})'
