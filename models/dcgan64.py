"""DCGAN at 64x64: seed 001 (DCGAN scored by Inception Score at 299x299).

Seed 001: 100-d noise, "dense and transposed convolution layers" up to 64x64, ReLU hidden and
Tanh output; a discriminator of convolutions with LeakyReLU and a sigmoid output; binary
cross-entropy; Adam with learning rate ~2e-4; mini-batch 64; images upscaled to 64x64.
Details the document leaves open take DCGAN's standard values (Radford et al.): a dense layer
to 4x4x(8*64), then transposed convolutions 4x4/2 halving channels 512-256-128-64-1 with
batch norm; D mirrors it with 4x4/2 convolutions 64-128-256-512, batch norm on all but the
first, LeakyReLU(0.2), then a dense output; N(0, 0.02) init; Adam beta1 0.5.

Deviation: D returns logits and the sigmoid lives in BCE-with-logits (same objective, stable).
The data layer upscales Fashion-MNIST bilinearly to 64x64 and rounds to uint8 once (cached),
as the seed's ``Resize(64)`` on PIL images does.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from models.data_options import DataOptions
from models.init import dcgan_init
from models.layers import Unconditional
from models.registry import OptimConfig, Variant, register_variant


@dataclass(frozen=True)
class DCGAN64Arch:
    """Hyper-parameters of the 64x64 DCGAN."""

    z_dim: int = 100  # seed 001: 100-dimensional noise
    ngf: int = 64  # DCGAN's base width: 512-256-128-64 channels in G
    ndf: int = 64  # D widths 64-128-256-512


class DCGAN64Generator(Unconditional):
    """z (N, z_dim) -> image (N, 1, 64, 64) in [-1, 1]."""

    def __init__(self, arch: DCGAN64Arch) -> None:
        super().__init__()
        g = arch.ngf
        self.c0 = g * 8
        self.fc = nn.Linear(arch.z_dim, 4 * 4 * self.c0, bias=False)
        layers: list[nn.Module] = [nn.BatchNorm2d(self.c0), nn.ReLU(True)]
        for cin, cout in ((g * 8, g * 4), (g * 4, g * 2), (g * 2, g)):  # 8, 16, 32
            layers += [nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout)]
            layers += [nn.ReLU(True)]
        layers += [nn.ConvTranspose2d(g, 1, 4, 2, 1, bias=False), nn.Tanh()]  # 64
        self.net = nn.Sequential(*layers)
        dcgan_init(self)

    def run(self, z: torch.Tensor) -> torch.Tensor:
        """Generate images."""
        return self.net(self.fc(z.reshape(z.shape[0], -1)).reshape(-1, self.c0, 4, 4))


class DCGAN64Discriminator(Unconditional):
    """image (N, 1, 64, 64) -> logit (N,)."""

    def __init__(self, arch: DCGAN64Arch) -> None:
        super().__init__()
        d = arch.ndf
        layers: list[nn.Module] = [nn.Conv2d(1, d, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True)]
        for cin, cout in ((d, d * 2), (d * 2, d * 4), (d * 4, d * 8)):  # 16, 8, 4
            layers += [nn.Conv2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout)]
            layers += [nn.LeakyReLU(0.2, True)]
        layers += [nn.Flatten(), nn.Linear(d * 8 * 4 * 4, 1)]
        self.net = nn.Sequential(*layers)
        dcgan_init(self)

    def run(self, x: torch.Tensor) -> torch.Tensor:
        """Real/fake logits of shape (N,)."""
        return self.net(x).reshape(-1)


@register_variant("dcgan-64")
def _dcgan_64() -> Variant:
    arch = DCGAN64Arch()
    return Variant(
        seed_doc="001",
        summary="Dense 4x4x512 + ConvT 256-128-64-1 to 64x64; D conv 64-512 + dense; BN",
        arch=arch,
        build_generator=DCGAN64Generator,
        build_discriminator=DCGAN64Discriminator,
        loss="bce",
        batch_size=64,
        z_dim=arch.z_dim,
        optim=OptimConfig(lr_g=2e-4, lr_d=2e-4, betas=(0.5, 0.999)),
        data=DataOptions(resolution=64),
        notes="layer plan: DCGAN paper's 64x64 network with a dense first layer, as seed 001",
    )
