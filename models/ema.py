"""The generator's exponential moving average (G_ema), the network every metric scores."""

from __future__ import annotations

import torch
from torch import nn


@torch.no_grad()
def update_ema(ema: nn.Module, model: nn.Module, decay: float) -> None:
    """``ema = decay * ema + (1 - decay) * model`` for parameters; buffers are copied."""
    for pe, p in zip(ema.parameters(), model.parameters(), strict=True):
        pe.lerp_(p, 1.0 - decay)
    for be, b in zip(ema.buffers(), model.buffers(), strict=True):
        be.copy_(b)


def ema_decay_at(step: int, decay: float, rampup: float | None = None) -> float:
    """G_ema's decay for the update after G step ``step`` (1-based).

    Without ``rampup``: TensorFlow's ExponentialMovingAverage warm-up, ``min(decay,
    (1+t)/(10+t))``, so the first averages track G. With ``rampup`` r: StyleGAN2-ADA's ramp,
    the half-life is at most r * t steps, i.e. ``min(decay, 0.5 ** (1 / (r * t)))``; the
    average then spans a fixed fraction of training at any budget instead of lagging a
    generator that is still improving fast (measured on sngan-ema: docs/results/evidence.md).
    """
    if rampup is None:
        return min(decay, (1 + step) / (10 + step))
    return min(decay, 0.5 ** (1.0 / (rampup * max(step, 1))))
