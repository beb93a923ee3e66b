"""Differentiable augmentation (DiffAugment, Zhao et al. 2020) as a reusable recipe piece.

Every image the discriminator sees, real or fake, in D's step and in G's step, goes through
the same random, differentiable transform, so D cannot overfit the small training set and
G still receives gradients through the augmentation. A variant names its policy
(``augment=("translation", "cutout")``); the harness wraps D once, for every loss.

Random draws use torch's global RNG, which the harness checkpoints, so resume stays exact.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

Augment = Callable[[torch.Tensor], torch.Tensor]


def translation(x: torch.Tensor, ratio: float = 0.125) -> torch.Tensor:
    """Shift each image by up to ``ratio`` of its size in x and y, filling with zeros."""
    n, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    ty = torch.randint(-sh, sh + 1, (n, 1, 1), device=x.device)
    tx = torch.randint(-sw, sw + 1, (n, 1, 1), device=x.device)
    gy = (torch.arange(h, device=x.device).view(1, h, 1) + ty + 1).clamp(0, h + 1)
    gx = (torch.arange(w, device=x.device).view(1, 1, w) + tx + 1).clamp(0, w + 1)
    padded = F.pad(x, [1, 1, 1, 1]).permute(0, 2, 3, 1)  # N, H+2, W+2, C
    batch = torch.arange(n, device=x.device).view(n, 1, 1)
    return padded[batch, gy, gx].permute(0, 3, 1, 2).contiguous(memory_format=_fmt(x))


def cutout(x: torch.Tensor, ratio: float = 0.5) -> torch.Tensor:
    """Zero a square of ``ratio`` of the image size at a random position (may be clipped)."""
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    cy = torch.randint(0, h + (1 - ch % 2), (n, 1, 1), device=x.device)
    cx = torch.randint(0, w + (1 - cw % 2), (n, 1, 1), device=x.device)
    ys = torch.arange(h, device=x.device).view(1, h, 1)
    xs = torch.arange(w, device=x.device).view(1, 1, w)
    inside = ((ys - cy + ch // 2) >= 0) & ((ys - cy + ch // 2) < ch)
    inside = inside & ((xs - cx + cw // 2) >= 0) & ((xs - cx + cw // 2) < cw)
    return x * (~inside).unsqueeze(1).to(x.dtype)


def _fmt(x: torch.Tensor) -> torch.memory_format:
    return (
        torch.channels_last
        if x.is_contiguous(memory_format=torch.channels_last)
        else (torch.contiguous_format)
    )


AUGMENTS: dict[str, Augment] = {"translation": translation, "cutout": cutout}


class DiffAugmentD(nn.Module):
    """Wraps a discriminator so that every input is augmented by ``policy`` first.

    It holds no parameters of its own: ``state_dict`` of the wrapped D is what checkpoints keep.
    """

    def __init__(self, D: nn.Module, policy: tuple[str, ...]) -> None:
        super().__init__()
        unknown = [p for p in policy if p not in AUGMENTS]
        if unknown:
            raise ValueError(f"unknown augmentation(s) {unknown}; known: {', '.join(AUGMENTS)}")
        self.D, self.policy = D, policy

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """D(augment(x)), with labels passed through for conditional discriminators."""
        for name in self.policy:
            x = AUGMENTS[name](x)
        return self.D(x) if labels is None else self.D(x, labels)
