"""Building blocks shared by several variants: class indexing and conditional batch norm for
conditional networks, spectral norm helpers."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm


class Unconditional(nn.Module):
    """Base of the unconditional networks. The harness calls every network as
    ``net(x, labels)``; these accept the labels, ignore them and compute :meth:`run`."""

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """``run(x)``; ``labels`` is ignored."""
        return self.run(x)

    def run(self, x: torch.Tensor) -> torch.Tensor:
        """The network on ``x`` (noise for a generator, images for a discriminator)."""
        raise NotImplementedError


class Dropout(nn.Dropout):
    """Inverted dropout whose keep mask is a float32 uniform draw compared with ``p`` (as
    TensorFlow draws it) instead of ``bernoulli_``, which is slow on CPUs: the same
    distribution (each unit kept with probability 1 - p and scaled by 1 / (1 - p), identity
    in eval mode), drawn from the same torch RNG so checkpoints resume it exactly. The draw
    stays float32 under bf16 autocast, so p keeps its resolution; the mask keeps the input's
    memory format. Other masks mean other numerics, so a variant adopts it only where the
    speed-up pays and its FID holds (docs/speed.md)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` with each unit zeroed with probability ``p`` (training mode only)."""
        if not self.training or self.p == 0.0:
            return x
        if self.p >= 1.0:
            return x * 0.0
        keep = torch.rand_like(x, dtype=torch.float32) >= self.p
        return x * keep * (1.0 / (1.0 - self.p))


def keras_batch_norm(channels: int, eps: float, momentum: float) -> nn.BatchNorm2d:
    """Batch norm as a Keras-built seed has it: Keras's epsilon, and its moving-average
    momentum given in PyTorch's convention (Keras 0.99 is PyTorch 0.01)."""
    return nn.BatchNorm2d(channels, eps=eps, momentum=momentum)


class ClassIndex(nn.Module):
    """Class ids -> rows of a conditional network's class tables (embeddings, per-class
    batch-norm affines): the position of each id in the variant's class list. A network
    sized for K classes then serves any K of the ten, e.g. classes 5 and 9, while labels stay
    class ids everywhere else (data, samples, metrics). :meth:`Variant.build` sets the list;
    until then ids map to themselves. The table is not part of the state dict."""

    def __init__(self, n_classes: int) -> None:
        super().__init__()
        self.n_classes = n_classes
        self.register_buffer("table", torch.arange(n_classes), persistent=False)

    def set_class_ids(self, class_ids: tuple[int, ...]) -> None:
        """Use row i for class ``class_ids[i]``; any other id maps to -1 (an index error)."""
        if len(class_ids) != self.n_classes:
            raise ValueError(f"{len(class_ids)} class ids for {self.n_classes} class rows")
        table = torch.full((max(class_ids) + 1,), -1, dtype=torch.long)
        table[list(class_ids)] = torch.arange(len(class_ids))
        self.table = table.to(self.table.device)

    def forward(self, labels: torch.Tensor) -> torch.Tensor:
        """The rows of ``labels``."""
        return self.table[labels]


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


def has_conv(module: nn.Module) -> bool:
    """Whether ``module`` holds a (transposed) convolution: the networks the harness keeps
    in channels-last memory format when asked, and that a rebuilt G must match."""
    return any(isinstance(m, nn.Conv2d | nn.ConvTranspose2d) for m in module.modules())
