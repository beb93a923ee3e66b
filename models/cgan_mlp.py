"""Conditional MLP GAN: seed 003 (cGAN scored by FID).

Seed 003: the generator takes noise and a label embedding through linear layers
(noise + n_labels) -> 128 -> 256 -> 512 -> 1024 -> 28*28; the discriminator takes the image and
a label embedding through (n_labels + 784) -> 512 -> 1024 -> 1024 -> 512 -> 1 with a sigmoid.
Labels are embedded with ``Embedding(n_labels, n_labels)``. Images are scaled to [0, 1].

``cgan-mlp`` trains on all ten classes. ``cgan-mlp-2class`` is seed 003 exactly: T-shirt/top
and Trouser only, with the 80/10/10 split (carved from the training file: the official test
split stays the untouched metrics reference, restricted to the same two classes).

Choices where the document is silent (standard PyTorch values, noted): LeakyReLU(0.2) between
linear layers; no batch norm or dropout (none is listed); a Sigmoid output, since the data is
in [0, 1]; PyTorch's default initialisation; batch 64; Adam(2e-4, 0.5, 0.999); BCE.
Deviation: D returns logits and the sigmoid lives in BCE-with-logits (same objective, stable).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import torch
from torch import nn

from models.data_options import DataOptions
from models.layers import ClassIndex
from models.registry import OptimConfig, Variant, register_variant


@dataclass(frozen=True)
class CGANMLPArch:
    """Hyper-parameters of seed 003's conditional MLP GAN."""

    z_dim: int = 100  # noise size (the document does not state it; the common value)
    n_classes: int = 10  # n_labels: embedding rows and size; 2 for the seed's two classes
    g_widths: tuple[int, ...] = (128, 256, 512, 1024)  # seed 003's generator layers
    d_widths: tuple[int, ...] = (512, 1024, 1024, 512)  # seed 003's discriminator layers
    leaky_slope: float = 0.2  # standard for MLP GANs; the document names no activation


def _mlp(widths: tuple[int, ...], slope: float) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for cin, cout in itertools.pairwise(widths):
        layers += [nn.Linear(cin, cout), nn.LeakyReLU(slope, inplace=True)]
    return layers


class MLPGenerator(nn.Module):
    """(z, y) -> image (N, 1, 28, 28) in [0, 1]."""

    def __init__(self, arch: CGANMLPArch) -> None:
        super().__init__()
        self.z_dim, self.n_classes = arch.z_dim, arch.n_classes
        self.classes = ClassIndex(arch.n_classes)
        self.embed = nn.Embedding(arch.n_classes, arch.n_classes)
        widths = (arch.z_dim + arch.n_classes, *arch.g_widths)
        self.net = nn.Sequential(
            *_mlp(widths, arch.leaky_slope), nn.Linear(widths[-1], 28 * 28), nn.Sigmoid()
        )

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Images of the classes ``labels``."""
        h = torch.cat([z.reshape(z.shape[0], -1), self.embed(self.classes(labels))], dim=1)
        return self.net(h).reshape(-1, 1, 28, 28)


class MLPDiscriminator(nn.Module):
    """(image, y) -> logit (N,)."""

    def __init__(self, arch: CGANMLPArch) -> None:
        super().__init__()
        self.classes = ClassIndex(arch.n_classes)
        self.embed = nn.Embedding(arch.n_classes, arch.n_classes)
        widths = (28 * 28 + arch.n_classes, *arch.d_widths)
        self.net = nn.Sequential(*_mlp(widths, arch.leaky_slope), nn.Linear(widths[-1], 1))

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Real/fake logits for images ``x`` claimed to be of classes ``labels``."""
        h = torch.cat([x.reshape(x.shape[0], -1), self.embed(self.classes(labels))], dim=1)
        return self.net(h).reshape(-1)


def _cgan(arch: CGANMLPArch, data: DataOptions, summary: str, notes: str) -> Variant:
    return Variant(
        seed_doc="003",
        summary=summary,
        arch=arch,
        build_generator=MLPGenerator,
        build_discriminator=MLPDiscriminator,
        loss="bce",
        batch_size=64,
        z_dim=arch.z_dim,
        optim=OptimConfig(lr_g=2e-4, lr_d=2e-4, betas=(0.5, 0.999)),
        conditional=True,
        data=data,
        notes=notes,
    )


@register_variant("cgan-mlp")
def _cgan_mlp() -> Variant:
    return _cgan(
        CGANMLPArch(),
        DataOptions(value_range=(0.0, 1.0)),
        "cGAN MLP: [z, emb(y)] 128-256-512-1024-784 Sigmoid; D [x, emb(y)] 512-1024-1024-512-1",
        "all ten classes; activations, batch and optimiser are standard choices (seed silent)",
    )


@register_variant("cgan-mlp-2class")
def _cgan_mlp_2class() -> Variant:
    return _cgan(
        CGANMLPArch(n_classes=2),
        DataOptions(classes=(0, 1), split="80/10/10", value_range=(0.0, 1.0)),
        "cgan-mlp on T-shirt/top + Trouser only, seed 003's 80/10/10 split",
        "seed 003 exactly: two classes, n_labels 2, 80% of their training images",
    )
