"""Weight initialisations used by the seed projects' frameworks."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import parametrize


def weight_of(m: nn.Module) -> torch.Tensor:
    """The stored weight: under a parametrisation (spectral norm) the unnormalised original,
    since ``m.weight`` is then recomputed on every access and writing to it is lost."""
    if parametrize.is_parametrized(m, "weight"):
        return m.parametrizations.weight.original
    return m.weight


def dcgan_init(module: nn.Module) -> None:
    """Radford et al.: conv weights ~ N(0, 0.02); batch-norm scale ~ N(1, 0.02), shift 0."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d | nn.Linear):
            nn.init.normal_(weight_of(m), 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d | nn.BatchNorm1d) and m.affine:
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


def keras_init(module: nn.Module) -> None:
    """Keras defaults: Glorot-uniform kernels, zero biases, batch-norm scale 1 and shift 0."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d | nn.Linear | nn.Embedding):
            nn.init.xavier_uniform_(m.weight)
            if getattr(m, "bias", None) is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d | nn.BatchNorm1d) and m.affine:
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
