"""Building blocks shared by several variants: conditional batch norm, spectral norm helpers."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm


class ConditionalBatchNorm2d(nn.Module):
    """Batch norm whose scale and shift are looked up per class (de Vries et al. 2017;
    the generator side of Miyato & Koyama 2018). Scales start at 1 and shifts at 0."""

    def __init__(self, channels: int, n_classes: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(channels, affine=False)
        self.gamma = nn.Embedding(n_classes, channels)
        self.beta = nn.Embedding(n_classes, channels)
        nn.init.ones_(self.gamma.weight)
        nn.init.zeros_(self.beta.weight)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Normalise ``x`` and apply the per-class affine transform of ``labels``."""
        g = self.gamma(labels)[:, :, None, None]
        b = self.beta(labels)[:, :, None, None]
        return self.bn(x) * g + b


def sn(module: nn.Module) -> nn.Module:
    """Spectral normalisation (Miyato et al. 2018): one power iteration per training forward."""
    return spectral_norm(module)
