"""DiffAugment: shapes, what each transform does, differentiability, seeded determinism."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from models.augment import DiffAugmentD, cutout, translation


def test_translation_shifts_content_and_keeps_mass_or_less() -> None:
    torch.manual_seed(0)
    x = torch.zeros(64, 1, 28, 28)
    x[:, :, 12:16, 12:16] = 1.0  # a centred square survives any shift of <= 4 pixels
    y = translation(x)
    assert y.shape == x.shape
    assert torch.all(y.sum(dim=(1, 2, 3)) == 16)
    shifts = set()
    for i in range(64):  # where the square went: every shift within +-4 px (1/8 of 28, rounded)
        rows, cols = torch.nonzero(y[i, 0], as_tuple=True)
        dy, dx = 12 - int(rows.min()), 12 - int(cols.min())
        assert max(abs(dy), abs(dx)) <= 4 and int(rows.max()) - int(rows.min()) == 3
        shifts.add((dy, dx))
    assert len(shifts) > 30  # of the 81 possible, drawn independently per image
    assert translation(torch.ones(8, 1, 28, 28)).min() == 0  # borders filled with zeros


def test_cutout_zeroes_a_half_size_square() -> None:
    torch.manual_seed(0)
    y = cutout(torch.ones(32, 1, 28, 28))
    zeros = (y == 0).sum(dim=(1, 2, 3))
    assert torch.all(zeros <= 14 * 14) and torch.all(zeros >= 7 * 7)  # clipped at the border
    assert (zeros == 14 * 14).any()


def test_augmented_d_is_differentiable_and_seeded() -> None:
    D = nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, 1))
    wrapped = DiffAugmentD(D, ("translation", "cutout"))
    x = torch.randn(4, 1, 28, 28, requires_grad=True)
    torch.manual_seed(1)
    out = wrapped(x)
    out.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0  # G gets gradients through it
    torch.manual_seed(1)
    assert torch.equal(wrapped(x), out)  # global RNG -> checkpointed -> exact resume
    assert list(wrapped.state_dict()) == [f"D.{k}" for k in D.state_dict()]  # no state of its own
    with pytest.raises(ValueError, match="unknown augmentation"):
        DiffAugmentD(D, ("flip",))
