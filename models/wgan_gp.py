"""WGAN-GP for 28x28 Fashion-MNIST: seed 004 (Keras/TensorFlow).

Seed 004's generator: dense layer, batch norm, LeakyReLU, transposed convolutions with batch
norm and LeakyReLU, Tanh output. Its critic: convolutions with LeakyReLU and dropout, no batch
norm (batch norm would break the per-sample gradient penalty), a fully connected output.
This is TensorFlow's DCGAN tutorial network, which the seed's description matches layer for
layer, so we take its sizes: Dense 7x7x256 -> ConvT 128 (5x5, /1) -> ConvT 64 (5x5, x2) ->
ConvT 1 (5x5, x2); critic Conv 64 (5x5, /2) -> Conv 128 (5x5, /2) -> Dense 1.
Training as the seed: noise 100, batch 128, Adam(1e-4, 0.5, 0.9), GP weight 10, 5 critic
steps per generator step.

Keras defaults reproduced (the seed relies on them): LeakyReLU slope 0.3, batch-norm momentum
0.99 (PyTorch momentum 0.01) and epsilon 1e-3, Glorot-uniform init, Adam epsilon 1e-7,
dropout 0.3, its mask drawn as TensorFlow draws it (a uniform draw compared with the rate:
``models.layers.Dropout``, faster on CPUs than PyTorch's ``bernoulli_``). Deviation:
PyTorch's symmetric padding replaces TF's 'same' padding for stride-2 convolutions (TF pads
1 before and 2 after; output sizes are identical).
Seed 004 trained on a random half of the training set. ``wgan-gp`` trains on the full set like
every other variant so that the comparison is fair; ``--faithful`` (on ``bench run``/``train``)
applies the seed's setting: a random half, fixed by ``fraction_seed`` 0 across training seeds.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from models.init import keras_init
from models.layers import Dropout, Unconditional, keras_batch_norm
from models.registry import OptimConfig, Variant, register_variant


@dataclass(frozen=True)
class WGANGPArch:
    """Hyper-parameters of seed 004's generator and critic."""

    z_dim: int = 100  # seed 004: noise dimension 100
    base: int = 256  # channels of the 7x7 map after the dense layer (TF tutorial)
    leaky_slope: float = 0.3  # Keras LeakyReLU default alpha
    dropout: float = 0.3  # TF tutorial critic dropout
    bn_momentum: float = 0.01  # Keras momentum 0.99 in PyTorch's convention
    bn_eps: float = 1e-3  # Keras BatchNormalization epsilon


class WGANGPGenerator(Unconditional):
    """z (N, z_dim) -> image (N, 1, 28, 28) in [-1, 1]."""

    def __init__(self, arch: WGANGPArch) -> None:
        super().__init__()
        b, s = arch.base, arch.leaky_slope
        self.z_dim, self.base = arch.z_dim, b

        def bn2(c: int) -> nn.BatchNorm2d:
            return keras_batch_norm(c, arch.bn_eps, arch.bn_momentum)

        self.fc = nn.Sequential(
            nn.Linear(arch.z_dim, 7 * 7 * b, bias=False),
            nn.BatchNorm1d(7 * 7 * b, eps=arch.bn_eps, momentum=arch.bn_momentum),
            nn.LeakyReLU(s),
        )
        self.net = nn.Sequential(
            nn.ConvTranspose2d(b, b // 2, 5, 1, 2, bias=False),  # 7x7
            bn2(b // 2),
            nn.LeakyReLU(s),
            nn.ConvTranspose2d(b // 2, b // 4, 5, 2, 2, output_padding=1, bias=False),  # 14x14
            bn2(b // 4),
            nn.LeakyReLU(s),
            nn.ConvTranspose2d(b // 4, 1, 5, 2, 2, output_padding=1, bias=False),  # 28x28
            nn.Tanh(),
        )
        keras_init(self)

    def run(self, z: torch.Tensor) -> torch.Tensor:
        """Generate images."""
        return self.net(self.fc(z.reshape(z.shape[0], -1)).reshape(-1, self.base, 7, 7))


class WGANGPCritic(Unconditional):
    """image (N, 1, 28, 28) -> unbounded critic score (N,)."""

    def __init__(self, arch: WGANGPArch) -> None:
        super().__init__()
        s = arch.leaky_slope
        self.net = nn.Sequential(
            nn.Conv2d(1, 64, 5, 2, 2),  # 14x14
            nn.LeakyReLU(s),
            Dropout(arch.dropout),
            nn.Conv2d(64, 128, 5, 2, 2),  # 7x7
            nn.LeakyReLU(s),
            Dropout(arch.dropout),
            nn.Flatten(),
            nn.Linear(128 * 7 * 7, 1),
        )
        keras_init(self)

    def run(self, x: torch.Tensor) -> torch.Tensor:
        """Critic scores of shape (N,)."""
        return self.net(x).reshape(-1)


@register_variant("wgan-gp")
def _wgan_gp() -> Variant:
    arch = WGANGPArch()
    return Variant(
        seed_doc="004",
        summary="Dense 7x7x256, ConvT 128-64-1 + BN/LeakyReLU/Tanh; critic conv 64-128 + dropout",
        arch=arch,
        build_generator=WGANGPGenerator,
        build_discriminator=WGANGPCritic,
        loss="wgan-gp",
        loss_kwargs={"gp_weight": 10.0, "n_critic": 5},
        batch_size=128,
        z_dim=arch.z_dim,
        optim=OptimConfig(lr_g=1e-4, lr_d=1e-4, betas=(0.5, 0.9), eps=1e-7),
        faithful={"fraction": 0.5},  # seed 004: "reduced the training set size to half"
        notes="TF DCGAN-tutorial sizes; Keras defaults; full training set unless --faithful",
    )
