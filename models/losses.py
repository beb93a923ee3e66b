"""GAN objectives: everything that differs between GAN recipes' update rules lives here.

The training harness runs one loop for all variants: ``n_critic`` discriminator steps, each
with :meth:`GANLoss.d_loss`, then one generator step with :meth:`GANLoss.g_loss`. A loss is
registered by name (``@register_loss``) and built from a variant's config.

Discriminators return raw scores (logits) of shape ``(N,)``; a seed's final sigmoid is folded
into the numerically stable ``binary_cross_entropy_with_logits``, which is mathematically the
same objective.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

Stats = dict[str, torch.Tensor]


class GANLoss:
    """Base class: a discriminator objective and a generator objective.

    Attributes:
        n_critic: discriminator steps per generator step.
        stat_names: the extra per-step statistics the loss reports (columns of losses.csv).
    """

    n_critic: int = 1
    stat_names: tuple[str, ...] = ()

    def d_loss(
        self,
        D: nn.Module,
        real: torch.Tensor,
        fake: torch.Tensor,
        labels_real: Any,
        labels_fake: Any,
    ) -> tuple[torch.Tensor, Stats]:
        """Loss to minimise for D on a real and a (detached) fake batch."""
        raise NotImplementedError

    def g_loss(
        self, D: nn.Module, fake: torch.Tensor, labels_fake: Any
    ) -> tuple[torch.Tensor, Stats]:
        """Loss to minimise for G on a fake batch that carries G's graph."""
        raise NotImplementedError


def _d(D: nn.Module, x: torch.Tensor, labels: Any) -> torch.Tensor:
    out = D(x) if labels is None else D(x, labels)
    return out.reshape(-1).float()


_LOSSES: dict[str, Callable[..., GANLoss]] = {}


def register_loss(name: str) -> Callable[[type[GANLoss]], type[GANLoss]]:
    """Class decorator registering a loss under ``name`` (unique)."""

    def deco(cls: type[GANLoss]) -> type[GANLoss]:
        if name in _LOSSES:
            raise ValueError(f"loss {name!r} is already registered")
        _LOSSES[name] = cls
        return cls

    return deco


def loss_names() -> list[str]:
    """Registered loss names, sorted."""
    return sorted(_LOSSES)


def build_loss(name: str, **kwargs: Any) -> GANLoss:
    """Instantiate the loss registered as ``name`` with ``kwargs``."""
    if name not in _LOSSES:
        raise ValueError(f"unknown loss {name!r}; registered: {', '.join(loss_names())}")
    return _LOSSES[name](**kwargs)


@register_loss("bce")
class NonSaturatingBCE(GANLoss):
    """Goodfellow et al.'s GAN with the non-saturating generator loss (DCGAN's BCE recipe).

    D minimises BCE(D(x), 1) + BCE(D(G(z)), 0); G minimises BCE(D(G(z)), 1), i.e. it
    maximises log D(G(z)), which keeps gradients alive when D wins early.
    """

    stat_names = ("d_real", "d_fake")

    def __init__(self, label_smoothing: float = 0.0) -> None:
        self.real_target = 1.0 - label_smoothing  # one-sided smoothing; 0 = the seeds' recipe

    def d_loss(self, D, real, fake, labels_real, labels_fake):
        out_real, out_fake = _d(D, real, labels_real), _d(D, fake, labels_fake)
        loss = F.binary_cross_entropy_with_logits(
            out_real, torch.full_like(out_real, self.real_target)
        ) + F.binary_cross_entropy_with_logits(out_fake, torch.zeros_like(out_fake))
        return loss, {
            "d_real": torch.sigmoid(out_real).mean().detach(),
            "d_fake": torch.sigmoid(out_fake).mean().detach(),
        }

    def g_loss(self, D, fake, labels_fake):
        out = _d(D, fake, labels_fake)
        return F.binary_cross_entropy_with_logits(out, torch.ones_like(out)), {}


@register_loss("wgan-gp")
class WassersteinGP(GANLoss):
    """WGAN-GP (Gulrajani et al. 2017): critic loss E[D(fake)] - E[D(real)] + lambda * GP.

    GP = E[(||grad_x D(x_hat)||_2 - 1)^2] on random interpolates x_hat between real and fake
    samples; the generator minimises -E[D(G(z))]. ``n_critic`` critic steps per G step.
    """

    stat_names = ("wdist", "gp")

    def __init__(self, gp_weight: float = 10.0, n_critic: int = 5) -> None:
        if n_critic < 1:
            raise ValueError(f"n_critic must be >= 1, got {n_critic}")
        self.gp_weight, self.n_critic = gp_weight, n_critic

    def d_loss(self, D, real, fake, labels_real, labels_fake):
        out_real, out_fake = _d(D, real, labels_real), _d(D, fake, labels_fake)
        alpha = torch.rand(real.shape[0], *([1] * (real.dim() - 1)), device=real.device)
        x_hat = (alpha * real.detach() + (1 - alpha) * fake.detach()).requires_grad_(True)
        (grad,) = torch.autograd.grad(_d(D, x_hat, labels_real).sum(), x_hat, create_graph=True)
        gp = (grad.float().flatten(1).norm(2, dim=1) - 1).pow(2).mean()
        wdist = out_real.mean() - out_fake.mean()
        return -wdist + self.gp_weight * gp, {"wdist": wdist.detach(), "gp": gp.detach()}

    def g_loss(self, D, fake, labels_fake):
        return -_d(D, fake, labels_fake).mean(), {}


@register_loss("hinge")
class Hinge(GANLoss):
    """Hinge loss (Lim & Ye 2017; Miyato et al. 2018, SN-GAN and projection discriminator).

    D minimises E[relu(1 - D(x))] + E[relu(1 + D(G(z)))]; G minimises -E[D(G(z))].
    """

    stat_names = ("d_real", "d_fake")

    def __init__(self, n_critic: int = 1) -> None:
        if n_critic < 1:
            raise ValueError(f"n_critic must be >= 1, got {n_critic}")
        self.n_critic = n_critic

    def d_loss(self, D, real, fake, labels_real, labels_fake):
        out_real, out_fake = _d(D, real, labels_real), _d(D, fake, labels_fake)
        loss = F.relu(1 - out_real).mean() + F.relu(1 + out_fake).mean()
        return loss, {"d_real": out_real.mean().detach(), "d_fake": out_fake.mean().detach()}

    def g_loss(self, D, fake, labels_fake):
        return -_d(D, fake, labels_fake).mean(), {}
