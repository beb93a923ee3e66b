"""SN-GAN: spectral normalisation in the discriminator, hinge loss (beyond seeds).

Miyato et al. 2018's "standard CNN" cut to 28x28: G is a dense layer to 7x7x256, transposed
convolutions 4x4/2 to 128 and 64 channels with batch norm and ReLU, a 3x3 convolution to one
channel and Tanh; D alternates 3x3/1 and 4x4/2 convolutions (64, 64, 128, 128, 256, 256, 512)
with LeakyReLU(0.1), spectral normalisation on every layer, then a dense output. Hinge loss,
Adam(2e-4, 0.5, 0.999), one D step per G step, batch 64: the paper's setting "C" for this
network.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from models.layers import Unconditional, sn
from models.registry import OptimConfig, Variant, register_variant


@dataclass(frozen=True)
class SNGANArch:
    """Hyper-parameters of the SN-GAN standard CNN at 28x28."""

    z_dim: int = 128  # the SN-GAN paper's latent size
    gch: int = 256  # channels at 7x7 in G (paper: 512 at 4x4 for 32x32 images)
    dch: int = 64  # D's first width; doubles every down-sampling, 512 at the end
    leaky_slope: float = 0.1  # the paper's LeakyReLU slope in D


class SNGANGenerator(Unconditional):
    """z (N, z_dim) -> image (N, 1, 28, 28) in [-1, 1]."""

    def __init__(self, arch: SNGANArch) -> None:
        super().__init__()
        c = arch.gch
        self.c = c
        self.fc = nn.Linear(arch.z_dim, 7 * 7 * c)
        self.net = nn.Sequential(
            nn.BatchNorm2d(c),
            nn.ReLU(True),
            nn.ConvTranspose2d(c, c // 2, 4, 2, 1),  # 14x14
            nn.BatchNorm2d(c // 2),
            nn.ReLU(True),
            nn.ConvTranspose2d(c // 2, c // 4, 4, 2, 1),  # 28x28
            nn.BatchNorm2d(c // 4),
            nn.ReLU(True),
            nn.Conv2d(c // 4, 1, 3, 1, 1),
            nn.Tanh(),
        )

    def run(self, z: torch.Tensor) -> torch.Tensor:
        """Generate images."""
        return self.net(self.fc(z.reshape(z.shape[0], -1)).reshape(-1, self.c, 7, 7))


class SNGANDiscriminator(Unconditional):
    """image (N, 1, 28, 28) -> score (N,), every layer spectrally normalised."""

    def __init__(self, arch: SNGANArch) -> None:
        super().__init__()
        d, s = arch.dch, arch.leaky_slope
        plan = [  # (in, out, kernel, stride, padding): 28 -> 14 -> 7 -> 3
            (1, d, 3, 1, 1),
            (d, d, 4, 2, 1),
            (d, 2 * d, 3, 1, 1),
            (2 * d, 2 * d, 4, 2, 1),
            (2 * d, 4 * d, 3, 1, 1),
            (4 * d, 4 * d, 4, 2, 1),
            (4 * d, 8 * d, 3, 1, 1),
        ]
        layers: list[nn.Module] = []
        for cin, cout, k, st, p in plan:
            layers += [sn(nn.Conv2d(cin, cout, k, st, p)), nn.LeakyReLU(s, inplace=True)]
        self.net = nn.Sequential(*layers, nn.Flatten(), sn(nn.Linear(8 * d * 3 * 3, 1)))

    def run(self, x: torch.Tensor) -> torch.Tensor:
        """Unbounded scores of shape (N,)."""
        return self.net(x).reshape(-1)


@register_variant("sngan")
def _sngan() -> Variant:
    arch = SNGANArch()
    return Variant(
        seed_doc="beyond",
        summary="SN-GAN standard CNN: G dense 7x7x256 + ConvT; D 7 SN convs 64-512; hinge",
        arch=arch,
        build_generator=SNGANGenerator,
        build_discriminator=SNGANDiscriminator,
        loss="hinge",
        batch_size=64,
        z_dim=arch.z_dim,
        optim=OptimConfig(lr_g=2e-4, lr_d=2e-4, betas=(0.5, 0.999)),
        notes="Miyato et al. 2018 standard CNN, setting C, cut from 32x32 to 28x28",
    )
