"""DCGAN for 28x28 Fashion-MNIST: seed 000 (PyTorch, NGF/NDF capacity study).

Seed 000 follows Radford et al.: transposed convolutions in G with batch norm and ReLU,
Tanh output; strided convolutions in D with LeakyReLU(0.2) and batch norm (none on D's input
layer), Adam(2e-4, beta1 0.5), binary cross-entropy. It names NGF/NDF 64 and 32 but not the
layer plan for 28x28, so we take the PyTorch DCGAN tutorial's plan (bias-free convolutions,
4x4 start, doubling) cut to four stages: 4 -> 7 -> 14 -> 28, and its mirror in D.

Deviations: D returns logits and the sigmoid lives in the loss (BCE-with-logits: same
objective, numerically stable). Batch 128: the DCGAN paper's value; seed 000 does not state it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from torch import nn

from models.init import dcgan_init
from models.layers import Unconditional
from models.registry import OptimConfig, Variant, register_variant


@dataclass(frozen=True)
class DCGANArch:
    """Hyper-parameters of the 28x28 DCGAN."""

    z_dim: int = 100  # noise size of the DCGAN paper and seed 000
    ngf: int = 64  # generator feature maps; seed 000 compares 64 with 32
    ndf: int = 64  # discriminator feature maps; seed 000 ties NDF to NGF
    channels: int = 1  # grayscale


class DCGANGenerator(Unconditional):
    """z (N, z_dim) -> image (N, 1, 28, 28) in [-1, 1]."""

    def __init__(self, arch: DCGANArch) -> None:
        super().__init__()
        g = arch.ngf
        self.z_dim = arch.z_dim
        self.net = nn.Sequential(
            nn.ConvTranspose2d(arch.z_dim, g * 4, 4, 1, 0, bias=False),  # 4x4
            nn.BatchNorm2d(g * 4),
            nn.ReLU(True),
            nn.ConvTranspose2d(g * 4, g * 2, 3, 2, 1, bias=False),  # 7x7
            nn.BatchNorm2d(g * 2),
            nn.ReLU(True),
            nn.ConvTranspose2d(g * 2, g, 4, 2, 1, bias=False),  # 14x14
            nn.BatchNorm2d(g),
            nn.ReLU(True),
            nn.ConvTranspose2d(g, arch.channels, 4, 2, 1, bias=False),  # 28x28
            nn.Tanh(),
        )
        dcgan_init(self)

    def run(self, z: torch.Tensor) -> torch.Tensor:
        """Generate images."""
        return self.net(z.reshape(z.shape[0], -1, 1, 1))


class DCGANDiscriminator(Unconditional):
    """image (N, 1, 28, 28) -> logit (N,)."""

    def __init__(self, arch: DCGANArch) -> None:
        super().__init__()
        d = arch.ndf
        self.net = nn.Sequential(
            nn.Conv2d(arch.channels, d, 4, 2, 1, bias=False),  # 14x14, no BN on the input layer
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(d, d * 2, 4, 2, 1, bias=False),  # 7x7
            nn.BatchNorm2d(d * 2),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(d * 2, d * 4, 3, 2, 1, bias=False),  # 4x4
            nn.BatchNorm2d(d * 4),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(d * 4, 1, 4, 1, 0, bias=False),  # 1x1 logit
        )
        dcgan_init(self)

    def run(self, x: torch.Tensor) -> torch.Tensor:
        """Real/fake logits of shape (N,)."""
        return self.net(x).reshape(-1)


@register_variant("dcgan")
def _dcgan() -> Variant:
    arch = DCGANArch(ngf=64, ndf=64)
    return Variant(
        seed_doc="000",
        summary="DCGAN 28x28: ConvT 4-7-14-28 + BN/ReLU/Tanh; D conv + BN/LeakyReLU; NGF=NDF=64",
        arch=arch,
        build_generator=DCGANGenerator,
        build_discriminator=DCGANDiscriminator,
        loss="bce",
        batch_size=128,
        z_dim=arch.z_dim,
        optim=OptimConfig(lr_g=2e-4, lr_d=2e-4, betas=(0.5, 0.999)),
        notes="layer plan from the PyTorch DCGAN tutorial cut to 28x28; batch 128 (paper)",
    )


@register_variant("dcgan-small")
def _dcgan_small() -> Variant:
    # Derived from dcgan so that "identical except feature maps" holds by construction.
    return dataclasses.replace(
        _dcgan(),
        arch=DCGANArch(ngf=32, ndf=32),
        summary="seed 000's capacity study: the dcgan network with NGF=NDF=32",
        notes="identical to dcgan except feature maps (seed 000's results1/ configuration)",
    )
