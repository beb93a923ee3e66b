"""Conditional DCGAN: class-conditional batch norm in G, projection discriminator (beyond seeds).

None of the seed projects has it. It is ``dcgan``'s layer plan made conditional in the two ways
that work best for convolutional GANs (Miyato & Koyama 2018): every batch norm in the generator
takes a per-class scale and shift, and the discriminator scores ``psi(phi(x)) + <embed(y),
phi(x)>`` (a projection of the class embedding on its sum-pooled features) instead of
concatenating labels.

The discriminator is trained as Miyato & Koyama train it: spectral norm on every layer
(embedding included) instead of batch norm, the hinge loss, Adam(2e-4, beta1 0, beta2 0.9).
With dcgan's own D recipe (batch norm, BCE, beta1 0.5) the projection discriminator wins
outright and G collapses (docs/variants.md gives the measurements);
``--set arch.d_norm=batch --set loss=bce --set optim.betas=0.5,0.999`` reproduces it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from models.init import dcgan_init
from models.layers import ClassIndex, ConditionalBatchNorm2d, sn
from models.registry import OptimConfig, Variant, register_variant


@dataclass(frozen=True)
class CDCGANArch:
    """Hyper-parameters of the conditional DCGAN."""

    z_dim: int = 100  # as dcgan
    ngf: int = 64  # as dcgan
    ndf: int = 64  # as dcgan
    n_classes: int = 10  # Fashion-MNIST classes
    d_norm: str = "spectral"  # Miyato & Koyama's D: SN, no BN; "batch" is dcgan's D (collapses)
    pool: str = "sum"  # global pooling of D's 4x4 features: "sum" (Miyato & Koyama) or "mean"

    def __post_init__(self) -> None:
        if self.d_norm not in ("batch", "spectral"):
            raise ValueError(f"d_norm must be 'batch' or 'spectral', got {self.d_norm!r}")
        if self.pool not in ("sum", "mean"):
            raise ValueError(f"pool must be 'sum' or 'mean', got {self.pool!r}")


class CDCGANGenerator(nn.Module):
    """(z, y) -> image (N, 1, 28, 28) in [-1, 1]; dcgan's layers with conditional batch norm."""

    def __init__(self, arch: CDCGANArch) -> None:
        super().__init__()
        g, k = arch.ngf, arch.n_classes
        self.z_dim = arch.z_dim
        self.convs = nn.ModuleList(
            [
                nn.ConvTranspose2d(arch.z_dim, g * 4, 4, 1, 0, bias=False),  # 4x4
                nn.ConvTranspose2d(g * 4, g * 2, 3, 2, 1, bias=False),  # 7x7
                nn.ConvTranspose2d(g * 2, g, 4, 2, 1, bias=False),  # 14x14
            ]
        )
        self.classes = ClassIndex(k)
        self.norms = nn.ModuleList([ConditionalBatchNorm2d(c, k) for c in (g * 4, g * 2, g)])
        self.out = nn.Sequential(nn.ConvTranspose2d(g, 1, 4, 2, 1, bias=False), nn.Tanh())
        dcgan_init(self)
        for n in self.norms:  # dcgan_init must not touch the class-conditional affine tables
            nn.init.ones_(n.gamma.weight)
            nn.init.zeros_(n.beta.weight)

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Images of the classes ``labels``."""
        h, rows = z.reshape(z.shape[0], -1, 1, 1), self.classes(labels)
        for conv, norm in zip(self.convs, self.norms, strict=True):
            h = torch.relu(norm(conv(h), rows))
        return self.out(h)


class ProjectionDiscriminator(nn.Module):
    """(image, y) -> logit (N,): dcgan's trunk, sum-pooled, plus a class projection term."""

    def __init__(self, arch: CDCGANArch) -> None:
        super().__init__()
        d = arch.ndf
        spectral = arch.d_norm == "spectral"
        wrap = sn if spectral else (lambda m: m)

        def norm(c: int) -> nn.Module:
            return nn.Identity() if spectral else nn.BatchNorm2d(c)

        self.trunk = nn.Sequential(
            wrap(nn.Conv2d(1, d, 4, 2, 1, bias=spectral)),  # 14x14
            nn.LeakyReLU(0.2, inplace=True),
            wrap(nn.Conv2d(d, d * 2, 4, 2, 1, bias=spectral)),  # 7x7
            norm(d * 2),
            nn.LeakyReLU(0.2, inplace=True),
            wrap(nn.Conv2d(d * 2, d * 4, 3, 2, 1, bias=spectral)),  # 4x4
            norm(d * 4),
            nn.LeakyReLU(0.2, inplace=True),
        )
        self.linear = wrap(nn.Linear(d * 4, 1))
        self.classes = ClassIndex(arch.n_classes)
        self.embed = wrap(nn.Embedding(arch.n_classes, d * 4))
        self.mean_pool = arch.pool == "mean"
        dcgan_init(self)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Real/fake logits for images ``x`` claimed to be of classes ``labels``."""
        h = self.trunk(x)
        h = h.mean(dim=(2, 3)) if self.mean_pool else h.sum(dim=(2, 3))
        rows = self.classes(labels)
        return self.linear(h).reshape(-1) + (self.embed(rows) * h).sum(dim=1)


@register_variant("cdcgan")
def _cdcgan() -> Variant:
    arch = CDCGANArch()
    return Variant(
        seed_doc="beyond",
        summary="dcgan layers, class-conditional BN in G, SN projection D (Miyato & Koyama)",
        arch=arch,
        build_generator=CDCGANGenerator,
        build_discriminator=ProjectionDiscriminator,
        loss="hinge",
        batch_size=128,
        z_dim=arch.z_dim,
        optim=OptimConfig(lr_g=2e-4, lr_d=2e-4, betas=(0.0, 0.9)),
        conditional=True,
        notes="dcgan's layers; D trained as Miyato & Koyama (SN, hinge, betas 0/0.9): dcgan's "
        "BN+BCE D collapses with the projection term (FID 515 vs 280 at quick)",
    )
