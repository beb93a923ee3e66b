"""The Keras up-sampling DCGAN: seed 002.

Seed 002 (a Keras notebook): generator Dense -> Reshape -> UpSampling -> Conv with batch
normalisation to 28x28; discriminator of convolutions with LeakyReLU, dropout, batch
normalisation and a sigmoid; trained with ``train(epochs=10000, batch_size=128,
save_interval=1000)``. That call and that layer list are the widely copied Keras-GAN DCGAN
(E. Linder-Noren), whose exact sizes we take: G Dense(7x7x128, ReLU) -> Up -> Conv 128 ->
BN -> ReLU -> Up -> Conv 64 -> BN -> ReLU -> Conv 1 -> Tanh; D Conv 32/2 -> LReLU -> Dropout
-> Conv 64/2 -> ZeroPad(0,1) -> BN -> LReLU -> Dropout -> Conv 128/2 -> BN -> LReLU ->
Dropout -> Conv 256/1 -> BN -> LReLU -> Dropout -> Dense(1, sigmoid); Adam(2e-4, 0.5).

Keras settings reproduced: BatchNormalization(momentum=0.8) as that code sets it (PyTorch
momentum 0.2) with Keras' epsilon 1e-3; LeakyReLU alpha 0.2 and Dropout 0.25 as set there;
Glorot-uniform init, zero biases; Adam beta2 0.999 and epsilon 1e-7 (Keras defaults); 3x3
kernels.

Deviations: the seed's "epochs" are iterations of one batch; here the budget is kimg like every
variant. Keras averages D's real and fake losses (0.5 * (real + fake)); we sum them, which Adam's
scale invariance makes equivalent up to epsilon. PyTorch's symmetric padding replaces TF's
'same' padding for stride-2 convolutions (same output sizes, one-pixel alignment difference).
D returns logits and the sigmoid lives in BCE-with-logits.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from models.init import keras_init
from models.layers import Unconditional, keras_batch_norm
from models.registry import OptimConfig, Variant, register_variant


@dataclass(frozen=True)
class KerasDCGANArch:
    """Hyper-parameters of the Keras-GAN DCGAN."""

    z_dim: int = 100  # Keras-GAN latent_dim
    bn_momentum: float = 0.2  # Keras BatchNormalization(momentum=0.8) in PyTorch's convention
    bn_eps: float = 1e-3  # Keras default epsilon
    leaky_slope: float = 0.2  # LeakyReLU(alpha=0.2) as set in that code
    dropout: float = 0.25  # Dropout(0.25) after each D block


class UpsampleGenerator(Unconditional):
    """z (N, z_dim) -> image (N, 1, 28, 28) in [-1, 1] via nearest up-sampling + convolutions."""

    def __init__(self, arch: KerasDCGANArch) -> None:
        super().__init__()

        def bn(c: int) -> nn.BatchNorm2d:
            return keras_batch_norm(c, arch.bn_eps, arch.bn_momentum)

        self.fc = nn.Sequential(nn.Linear(arch.z_dim, 128 * 7 * 7), nn.ReLU())
        self.net = nn.Sequential(
            nn.Upsample(scale_factor=2, mode="nearest"),  # 14x14
            nn.Conv2d(128, 128, 3, 1, 1),
            bn(128),
            nn.ReLU(),
            nn.Upsample(scale_factor=2, mode="nearest"),  # 28x28
            nn.Conv2d(128, 64, 3, 1, 1),
            bn(64),
            nn.ReLU(),
            nn.Conv2d(64, 1, 3, 1, 1),
            nn.Tanh(),
        )
        keras_init(self)

    def run(self, z: torch.Tensor) -> torch.Tensor:
        """Generate images."""
        return self.net(self.fc(z.reshape(z.shape[0], -1)).reshape(-1, 128, 7, 7))


class KerasDiscriminator(Unconditional):
    """image (N, 1, 28, 28) -> logit (N,)."""

    def __init__(self, arch: KerasDCGANArch) -> None:
        super().__init__()
        s, p = arch.leaky_slope, arch.dropout

        def bn(c: int) -> nn.BatchNorm2d:
            return keras_batch_norm(c, arch.bn_eps, arch.bn_momentum)

        self.net = nn.Sequential(
            nn.Conv2d(1, 32, 3, 2, 1),  # 14x14
            nn.LeakyReLU(s),
            nn.Dropout(p),
            nn.Conv2d(32, 64, 3, 2, 1),  # 7x7
            nn.ZeroPad2d((0, 1, 0, 1)),  # 8x8, as Keras-GAN's ZeroPadding2D(((0, 1), (0, 1)))
            bn(64),
            nn.LeakyReLU(s),
            nn.Dropout(p),
            nn.Conv2d(64, 128, 3, 2, 1),  # 4x4
            bn(128),
            nn.LeakyReLU(s),
            nn.Dropout(p),
            nn.Conv2d(128, 256, 3, 1, 1),  # 4x4
            bn(256),
            nn.LeakyReLU(s),
            nn.Dropout(p),
            nn.Flatten(),
            nn.Linear(256 * 4 * 4, 1),
        )
        keras_init(self)

    def run(self, x: torch.Tensor) -> torch.Tensor:
        """Real/fake logits of shape (N,)."""
        return self.net(x).reshape(-1)


@register_variant("dcgan-upsample")
def _dcgan_upsample() -> Variant:
    arch = KerasDCGANArch()
    return Variant(
        seed_doc="002",
        summary="Dense 7x7x128, Upsample+Conv 128-64-1 + BN/ReLU/Tanh; D conv 32-256 + BN/dropout",
        arch=arch,
        build_generator=UpsampleGenerator,
        build_discriminator=KerasDiscriminator,
        loss="bce",
        batch_size=128,
        z_dim=arch.z_dim,
        optim=OptimConfig(lr_g=2e-4, lr_d=2e-4, betas=(0.5, 0.999), eps=1e-7),
        notes="Keras-GAN DCGAN sizes and settings; kimg budget instead of 'epochs' (iterations)",
    )
