"""Lucic et al. 2018's own WGAN-GP for Fashion-MNIST, as an fmgan-bench plugin.

"Are GANs Created Equal?" trained every loss with one network pair, compare_gan v1's
InfoGAN-style networks, and searched the training settings per loss; its WGAN-GP reached FID
24.5 +- 2.1 on Fashion-MNIST. The built-in ``wgan-gp`` keeps seed 004's networks and
settings, so this plugin separates what the networks and the training setting each add.

Networks, as compare_gan v1's ``AbstractGAN`` builds them (28x28, one channel):

- G: z (64) -> FC 1024, BN, LeakyReLU(0.2) -> FC 7x7x128, BN, LeakyReLU -> deconv 64
  (4x4, /2), BN, LeakyReLU -> deconv 1 (4x4, /2) -> squashing output.
- D (critic): conv 64 (4x4, /2), LeakyReLU -> conv 128 (4x4, /2), LeakyReLU -> FC 1024,
  LeakyReLU -> FC 1. No batch norm: their narrow WGAN-GP range fixes
  ``discriminator_batchnorm`` to False (batch norm would also break the per-sample penalty).

TF's 'SAME' padding for these 4x4 stride-2 layers is PyTorch's padding 1 (same sizes, same
taps); weights as compare_gan initialises them (convolutions truncated normal, std 0.02,
cut at 2 std; dense and transposed convolutions normal, std 0.02; biases 0; batch-norm
scale 1, decay 0.999 (PyTorch momentum 0.001), epsilon 1e-3).

Noise: compare_gan draws z uniformly from [-1, 1]. The harness draws every variant's z from
N(0, 1) (one sampler for training, scoring and path length), so G's first operation maps it
through the normal CDF, ``erf(z / sqrt(2))``, which is exactly uniform on [-1, 1].

Training: the narrow range of compare_gan v1's ``params.py`` for WGAN_GP: 1 critic step,
Adam beta1 0.5 with TensorFlow's default beta2 0.999 (epsilon 1e-8), one learning rate for G
and D from [1e-4, 1e-3] (here 1e-4, its lower end; ``--set optim.lr=X`` picks another),
gradient-penalty weight 10 (their range: 0.1 to 10), batch 64.

Differences that remain: pixels in [-1, 1] with a Tanh output where compare_gan used [0, 1]
and a sigmoid (the penalty's unit gradient norm is then per [-1, 1] pixel unit); the
harness's G_ema is scored as every row is, and the raw G beside it (``raw G``), which is what
Lucic et al. score.

Use: ``bench run --plugin examples/lucic2018/lucic_wgan_gp.py --variants lucic-wgan-gp``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from models.layers import Unconditional
from models.registry import OptimConfig, Variant, register_variant


@dataclass(frozen=True)
class InfoGANArch:
    """compare_gan v1's network sizes (each can be changed with ``--set arch.<name>=...``)."""

    z_dim: int = 64  # Lucic et al.: z of dimension 64 for every model
    fc: int = 1024  # width of the dense layers in G and D
    ch: int = 64  # channels of the first conv (D) / last hidden deconv (G); 2x in between
    leaky_slope: float = 0.2  # compare_gan's lrelu
    bn_momentum: float = 0.001  # TF batch_norm decay 0.999 in PyTorch's convention
    bn_eps: float = 1e-3


def _compare_gan_init(module: nn.Module) -> None:
    """compare_gan v1's initialisers: convolutions truncated normal (std 0.02, cut at two
    standard deviations), dense layers and transposed convolutions normal (std 0.02), zero
    biases; batch norm keeps PyTorch's scale 1 and shift 0 (TF's defaults as well)."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.trunc_normal_(m.weight, 0.0, 0.02, -0.04, 0.04)
        elif isinstance(m, nn.Linear | nn.ConvTranspose2d):
            nn.init.normal_(m.weight, 0.0, 0.02)
        else:
            continue
        nn.init.zeros_(m.bias)


class InfoGANGenerator(Unconditional):
    """z (N, z_dim) ~ N(0, 1) -> image (N, 1, 28, 28) in [-1, 1]."""

    def __init__(self, arch: InfoGANArch) -> None:
        super().__init__()
        c, s = arch.ch, arch.leaky_slope
        self.ch2 = 2 * c

        def bn(n: int, dims: int) -> nn.Module:
            kind = nn.BatchNorm1d if dims == 1 else nn.BatchNorm2d
            return kind(n, eps=arch.bn_eps, momentum=arch.bn_momentum)

        self.fc = nn.Sequential(
            nn.Linear(arch.z_dim, arch.fc), bn(arch.fc, 1), nn.LeakyReLU(s),
            nn.Linear(arch.fc, 2 * c * 7 * 7), bn(2 * c * 7 * 7, 1), nn.LeakyReLU(s),
        )  # fmt: skip
        self.net = nn.Sequential(
            nn.ConvTranspose2d(2 * c, c, 4, 2, 1), bn(c, 2), nn.LeakyReLU(s),  # 14x14
            nn.ConvTranspose2d(c, 1, 4, 2, 1), nn.Tanh(),  # 28x28
        )  # fmt: skip
        _compare_gan_init(self)

    def run(self, z: torch.Tensor) -> torch.Tensor:
        """Images for normal noise ``z``, first made uniform on [-1, 1] as compare_gan's."""
        u = torch.erf(z.reshape(z.shape[0], -1) / math.sqrt(2.0))
        return self.net(self.fc(u).reshape(-1, self.ch2, 7, 7))


class InfoGANCritic(Unconditional):
    """image (N, 1, 28, 28) -> unbounded critic score (N,)."""

    def __init__(self, arch: InfoGANArch) -> None:
        super().__init__()
        c, s = arch.ch, arch.leaky_slope
        self.net = nn.Sequential(
            nn.Conv2d(1, c, 4, 2, 1), nn.LeakyReLU(s),  # 14x14
            nn.Conv2d(c, 2 * c, 4, 2, 1), nn.LeakyReLU(s),  # 7x7
            nn.Flatten(),
            nn.Linear(2 * c * 7 * 7, arch.fc), nn.LeakyReLU(s),
            nn.Linear(arch.fc, 1),
        )  # fmt: skip
        _compare_gan_init(self)

    def run(self, x: torch.Tensor) -> torch.Tensor:
        """Critic scores of shape (N,)."""
        return self.net(x).reshape(-1)


@register_variant("lucic-wgan-gp")
def _lucic_wgan_gp() -> Variant:
    arch = InfoGANArch()
    return Variant(
        seed_doc="lucic2018",
        summary="compare_gan v1 InfoGAN-style G/critic (FC 1024, conv 64-128), WGAN-GP, 1 step",
        arch=arch,
        build_generator=InfoGANGenerator,
        build_discriminator=InfoGANCritic,
        loss="wgan-gp",
        loss_kwargs={"gp_weight": 10.0, "n_critic": 1},
        batch_size=64,
        z_dim=arch.z_dim,
        optim=OptimConfig(lr_g=1e-4, lr_d=1e-4, betas=(0.5, 0.999), eps=1e-8),
        notes="Lucic et al.'s networks and narrow WGAN-GP range; z made uniform by erf; "
        "[-1, 1] pixels and Tanh instead of [0, 1] and sigmoid",
    )
