"""Losses against hand computations."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from models.losses import build_loss, loss_names


class Linear(nn.Module):
    """D(x) = <w, x> + b: its input gradient is w everywhere, so the GP is known exactly."""

    def __init__(self, w: torch.Tensor, b: float = 0.0) -> None:
        super().__init__()
        self.w = nn.Parameter(w.clone())
        self.b = b

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x.flatten(1) * self.w.flatten()).sum(1) + self.b


def test_registered_losses() -> None:
    assert loss_names() == ["bce", "hinge", "wgan-gp"]
    with pytest.raises(ValueError, match="unknown loss 'nope'"):
        build_loss("nope")


def test_bce_matches_hand_computation() -> None:
    D = Linear(torch.ones(1, 2, 2) * 0.1)
    real, fake = torch.ones(3, 1, 2, 2), -torch.ones(3, 1, 2, 2)  # logits +0.4 / -0.4
    loss = build_loss("bce")
    d, stats = loss.d_loss(D, real, fake, None, None)
    sp = lambda t: math.log1p(math.exp(t))  # noqa: E731  softplus
    assert d.item() == pytest.approx(sp(-0.4) + sp(-0.4), rel=1e-6)  # -log s(.4) - log(1-s(-.4))
    assert stats["d_real"].item() == pytest.approx(1 / (1 + math.exp(-0.4)), rel=1e-6)
    g, _ = loss.g_loss(D, fake, None)
    assert g.item() == pytest.approx(sp(0.4), rel=1e-6)  # -log s(-0.4): non-saturating


def test_wgan_gp_penalty_is_exact_for_linear_critic() -> None:
    torch.manual_seed(0)
    w = torch.randn(1, 4, 4)
    D = Linear(w, b=0.5)
    real, fake = torch.randn(8, 1, 4, 4), torch.randn(8, 1, 4, 4)
    loss = build_loss("wgan-gp", gp_weight=10.0, n_critic=5)
    assert loss.n_critic == 5
    d, stats = loss.d_loss(D, real, fake, None, None)
    gp = (w.norm() - 1) ** 2
    wdist = D(real).mean() - D(fake).mean()
    assert stats["gp"].item() == pytest.approx(gp.item(), rel=1e-5)
    assert d.item() == pytest.approx((-wdist + 10 * gp).item(), rel=1e-5)
    g, _ = loss.g_loss(D, fake, None)
    assert g.item() == pytest.approx(-D(fake).mean().item(), rel=1e-6)
    d.backward()  # the penalty is differentiable w.r.t. the critic (double backward)
    assert D.w.grad is not None and torch.isfinite(D.w.grad).all()
    with pytest.raises(ValueError, match="n_critic"):
        build_loss("wgan-gp", n_critic=0)


def test_hinge_matches_hand_computation() -> None:
    D = Linear(torch.ones(1, 1, 2) * 0.25)
    real = torch.tensor([[[[1.0, 1.0]]], [[[6.0, 6.0]]]])  # scores 0.5 and 3.0
    fake = torch.tensor([[[[-1.0, -1.0]]], [[[-8.0, -8.0]]]])  # scores -0.5 and -4.0
    loss = build_loss("hinge")
    d, _ = loss.d_loss(D, real, fake, None, None)
    # real: relu(1-0.5)=0.5, relu(1-3)=0 -> 0.25; fake: relu(1-0.5)=0.5, relu(1-4)=0 -> 0.25
    assert d.item() == pytest.approx(0.5)
    g, _ = loss.g_loss(D, fake, None)
    assert g.item() == pytest.approx(2.25)
