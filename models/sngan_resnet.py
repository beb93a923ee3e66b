"""ResNet SN-GAN with EMA, with and without DiffAugment: our bid for the best FID (beyond seeds).

The strongest small-image recipe we can assemble from published pieces, cut to 28x28
grayscale:
- a ResNet generator (Miyato et al. 2018 / Gulrajani et al. 2017 residual blocks with
  nearest up-sampling, batch norm and ReLU): dense 7x7 -> up 14 -> up 28 -> conv 3x3 -> Tanh;
- a ResNet discriminator with spectral normalisation on every layer (optimised first block,
  average-pool down-sampling to 7x7, two more blocks, ReLU, global sum pooling, dense);
- the hinge loss; Adam(2e-4, 0.0, 0.9), one D step per G step;
- an exponential moving average of G's weights for sampling, with StyleGAN2-ADA's ramp-up
  (``ema_rampup=0.005``: half-life at most 0.5% of the G steps so far, cap 0.999);
- `sngan-ema-diffaug` adds DiffAugment (Zhao et al. 2020), translation + cutout on every D
  input, the standard cure for a discriminator that memorises a small training set;
  `sngan-ema` is the same recipe without it, and is our strongest variant.
Why the strongest has no DiffAugment: Fashion-MNIST's 60k images are not the limited-data
regime DiffAugment was designed for (100-1,000 images per class in Zhao et al.); at these
budgets the augmentation only makes D's task harder to learn from, and it lost on both seeds
and at every tracked point. `sngan-ema-diffaug` is kept as the ablation that shows this in
every report, and for long runs where D overfits. Why the EMA ramp: a fixed 0.999 average
(half-life ~690 steps) lags a generator that is still improving fast over runs of 1-2k
steps; the ramp lengthens the average as training goes on, and r=0.005 tied the raw G. The
measurements are in docs/results/evidence.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from models.layers import Unconditional, sn
from models.registry import OptimConfig, Variant, register_variant


@dataclass(frozen=True)
class ResNetArch:
    """Hyper-parameters of the ResNet SN-GAN at 28x28."""

    z_dim: int = 128  # SN-GAN's latent size
    gch: int = 64  # G channels per block; 128 trains at 31 img/s on 2 CPU cores, 64 at ~4x
    dch: int = 64  # D channels per block (as G)


class GBlock(nn.Module):
    """Pre-activation residual block that doubles the resolution."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.bn1, self.bn2 = nn.BatchNorm2d(cin), nn.BatchNorm2d(cout)
        self.conv1 = nn.Conv2d(cin, cout, 3, 1, 1)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1)
        self.skip = nn.Conv2d(cin, cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Up-sampled residual output."""
        h = F.interpolate(F.relu(self.bn1(x)), scale_factor=2.0, mode="nearest")
        h = self.conv2(F.relu(self.bn2(self.conv1(h))))
        return h + self.skip(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class DBlock(nn.Module):
    """Spectrally normalised residual block, optionally down-sampling by average pooling.

    ``first`` is SN-GAN's optimised first block: no activation before its first convolution,
    and pooling before the shortcut convolution.
    """

    def __init__(self, cin: int, cout: int, down: bool, first: bool = False) -> None:
        super().__init__()
        self.down, self.first = down, first
        self.conv1 = sn(nn.Conv2d(cin, cout, 3, 1, 1))
        self.conv2 = sn(nn.Conv2d(cout, cout, 3, 1, 1))
        self.skip = sn(nn.Conv2d(cin, cout, 1)) if (cin != cout or down) else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Residual output, at half resolution when ``down``."""
        h = x if self.first else F.relu(x)
        h = self.conv2(F.relu(self.conv1(h)))
        if self.down:
            h = F.avg_pool2d(h, 2)
        s = x
        if self.first:
            s = self.skip(F.avg_pool2d(s, 2)) if self.skip is not None else s
        else:
            s = self.skip(s) if self.skip is not None else s
            s = F.avg_pool2d(s, 2) if self.down else s
        return h + s


class ResNetGenerator(Unconditional):
    """z (N, z_dim) -> image (N, 1, 28, 28) in [-1, 1]."""

    def __init__(self, arch: ResNetArch) -> None:
        super().__init__()
        c = arch.gch
        self.c = c
        self.fc = nn.Linear(arch.z_dim, 7 * 7 * c)
        self.blocks = nn.Sequential(GBlock(c, c), GBlock(c, c))  # 14, 28
        self.out = nn.Sequential(nn.BatchNorm2d(c), nn.ReLU(), nn.Conv2d(c, 1, 3, 1, 1), nn.Tanh())
        for m in self.modules():
            if isinstance(m, nn.Conv2d | nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    def run(self, z: torch.Tensor) -> torch.Tensor:
        """Generate images."""
        h = self.fc(z.reshape(z.shape[0], -1)).reshape(-1, self.c, 7, 7)
        return self.out(self.blocks(h))


class ResNetDiscriminator(Unconditional):
    """image (N, 1, 28, 28) -> score (N,)."""

    def __init__(self, arch: ResNetArch) -> None:
        super().__init__()
        c = arch.dch
        self.blocks = nn.Sequential(
            DBlock(1, c, down=True, first=True),  # 14x14
            DBlock(c, c, down=True),  # 7x7
            DBlock(c, c, down=False),
            DBlock(c, c, down=False),
        )
        self.fc = sn(nn.Linear(c, 1))

    def run(self, x: torch.Tensor) -> torch.Tensor:
        """Unbounded scores of shape (N,)."""
        return self.fc(F.relu(self.blocks(x)).sum(dim=(2, 3))).reshape(-1)


def _resnet_sngan(augment: tuple[str, ...], summary: str, notes: str) -> Variant:
    """The ResNet SN-GAN recipe; the two registered variants differ only in ``augment``."""
    arch = ResNetArch()
    return Variant(
        seed_doc="beyond",
        summary=summary,
        arch=arch,
        build_generator=ResNetGenerator,
        build_discriminator=ResNetDiscriminator,
        loss="hinge",
        batch_size=64,
        z_dim=arch.z_dim,
        optim=OptimConfig(lr_g=2e-4, lr_d=2e-4, betas=(0.0, 0.9)),
        ema_decay=0.999,
        ema_rampup=0.005,  # measured best of 0.005 / 0.01 / 0.02 / TF warm-up (docstring)
        augment=augment,
        notes=notes,
    )


@register_variant("sngan-ema")
def _sngan_ema() -> Variant:
    return _resnet_sngan(
        (),
        "ResNet G + SN ResNet D, hinge, EMA of G",
        "ResNet SN-GAN (Miyato et al.) with an EMA generator; our strongest recipe "
        "(sngan-ema-diffaug without DiffAugment, which loses at every budget measured)",
    )


@register_variant("sngan-ema-diffaug")
def _sngan_ema_diffaug() -> Variant:
    return _resnet_sngan(
        ("translation", "cutout"),
        "ResNet G + SN ResNet D, hinge, EMA, DiffAugment translation+cutout",
        "ResNet SN-GAN (Miyato et al.) + DiffAugment (Zhao et al.); our own recipe; "
        "the DiffAugment ablation of sngan-ema",
    )
