"""LSGAN (Mao et al. 2017, "Least Squares Generative Adversarial Networks") for 28x28
Fashion-MNIST, as an fmgan-bench plugin: its own networks, its own loss, registered with the
same decorators the built-in variants use.

The least-squares objective with the paper's 0-1 coding (a = 0 for fake, b = 1 for real,
c = 1 as G's target): D minimises 1/2 E[(D(x) - 1)^2] + 1/2 E[D(G(z))^2], G minimises
1/2 E[(D(G(z)) - 1)^2]. D's output is a raw score (no sigmoid). The networks are a small
DCGAN-style pair for 28x28 (G: 7 -> 14 -> 28 with batch norm; D: 28 -> 14 -> 7, a linear
score), Adam(2e-4, beta1 0.5), batch 64.

This file also works on its own: ``bench run --plugin path/to/gan.py --variants lsgan``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from models.losses import GANLoss, register_loss
from models.registry import OptimConfig, Variant, register_variant


@register_loss("least-squares")
class LeastSquares(GANLoss):
    """Mao et al.'s least-squares GAN loss with targets a (fake), b (real), c (G's aim)."""

    stat_names = ("d_real", "d_fake")  # mean raw scores, columns of losses.csv

    def __init__(self, a: float = 0.0, b: float = 1.0, c: float = 1.0) -> None:
        self.a, self.b, self.c = a, b, c

    @staticmethod
    def _scores(D: nn.Module, x: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        return (D(x) if labels is None else D(x, labels)).reshape(-1).float()

    def d_loss(self, D, real, fake, labels_real, labels_fake):
        s_real, s_fake = self._scores(D, real, labels_real), self._scores(D, fake, labels_fake)
        loss = 0.5 * ((s_real - self.b) ** 2).mean() + 0.5 * ((s_fake - self.a) ** 2).mean()
        return loss, {"d_real": s_real.mean().detach(), "d_fake": s_fake.mean().detach()}

    def g_loss(self, D, fake, labels_fake):
        s = self._scores(D, fake, labels_fake)
        return 0.5 * ((s - self.c) ** 2).mean(), {}


@dataclass(frozen=True)
class LSGANArch:
    """Hyper-parameters (each can be changed with `bench run --set arch.<name>=...`)."""

    z_dim: int = 100
    ngf: int = 64
    ndf: int = 64


def _init(module: nn.Module) -> None:
    """Radford et al.'s initialisation: weights N(0, 0.02), batch-norm scale N(1, 0.02)."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d | nn.Linear):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d | nn.BatchNorm1d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


class Generator(nn.Module):
    """z (N, z_dim) -> image (N, 1, 28, 28) in [-1, 1]."""

    def __init__(self, arch: LSGANArch) -> None:
        super().__init__()
        g = arch.ngf
        self.fc = nn.Sequential(
            nn.Linear(arch.z_dim, 2 * g * 7 * 7, bias=False), nn.BatchNorm1d(2 * g * 7 * 7),
            nn.ReLU(True),
        )  # fmt: skip
        self.net = nn.Sequential(
            nn.ConvTranspose2d(2 * g, g, 4, 2, 1, bias=False),  # 14x14
            nn.BatchNorm2d(g),
            nn.ReLU(True),
            nn.ConvTranspose2d(g, 1, 4, 2, 1),  # 28x28
            nn.Tanh(),
        )
        self.g = g
        _init(self)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Images for noise ``z``; ``labels`` is accepted and ignored (unconditional)."""
        return self.net(self.fc(z).reshape(z.shape[0], 2 * self.g, 7, 7))


class Discriminator(nn.Module):
    """image (N, 1, 28, 28) -> raw score (N,)."""

    def __init__(self, arch: LSGANArch) -> None:
        super().__init__()
        d = arch.ndf
        self.net = nn.Sequential(
            nn.Conv2d(1, d, 4, 2, 1),  # 14x14
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(d, 2 * d, 4, 2, 1, bias=False),  # 7x7
            nn.BatchNorm2d(2 * d),
            nn.LeakyReLU(0.2, True),
            nn.Flatten(),
            nn.Linear(2 * d * 7 * 7, 1),
        )
        _init(self)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """One score per image; ``labels`` is accepted and ignored (unconditional)."""
        return self.net(x).reshape(-1)


@register_variant("lsgan")
def _lsgan() -> Variant:
    return Variant(
        seed_doc="mao2017",
        summary="LSGAN: FC+2 transposed convs / 2 convs+linear, least-squares loss (0-1 coding)",
        arch=LSGANArch(),
        build_generator=Generator,
        build_discriminator=Discriminator,
        loss="least-squares",
        batch_size=64,
        z_dim=100,
        optim=OptimConfig(lr_g=2e-4, lr_d=2e-4, betas=(0.5, 0.999)),
    )
