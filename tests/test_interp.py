"""Interpolation smoothness: PPL through torch-fidelity, path discontinuity, strips."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from torch import nn

import models
from bench.cli import cli
from metrics.evaluator import load_evaluator
from metrics.interp import InterpSettings, latent_paths, ppl, slerp

S = InterpSettings(ppl_samples=200, paths=4, steps=9)


class Linear(nn.Module):
    """Images nearly linear in z (tanh far from saturation); ``scale`` speeds them up."""

    def __init__(self, z_dim: int, scale: float = 1.0) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.w = nn.Linear(z_dim, 784)
        self.scale = scale

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return torch.tanh(self.w(z) * 0.05 * self.scale).reshape(-1, 1, 28, 28)


class Step(nn.Module):
    """Two fixed images, switched by the sign of z[0]: a jump on paths that cross zero."""

    def __init__(self) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(1)
        self.register_buffer("a", torch.rand(1, 1, 28, 28, generator=g) * 2 - 1)
        self.register_buffer("b", torch.rand(1, 1, 28, 28, generator=g) * 2 - 1)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return torch.where((z[:, :1] > 0)[:, :, None, None], self.a, self.b)


def test_ppl_is_zero_for_a_constant_generator_and_grows_with_speed() -> None:
    v = models.get_variant("dcgan")
    const = ppl(_Const(), v, S)
    assert const["mean"] == 0.0
    slow, fast = ppl(Linear(v.z_dim), v, S), ppl(Linear(v.z_dim, 3.0), v, S)
    assert 0 < slow["mean"] < fast["mean"]
    assert const["kept"] <= S.ppl_samples and slow["kept"] >= 0.97 * S.ppl_samples


class _Const(nn.Module):
    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return torch.zeros(len(z), 1, 28, 28)


def test_ppl_converges_in_epsilon() -> None:
    """Float images (no uint8 rounding) make distance / eps^2 independent of eps."""
    v = models.get_variant("dcgan")
    G = Linear(v.z_dim)
    a = ppl(G, v, S)["mean"]
    b = ppl(G, v, dataclasses.replace(S, ppl_epsilon=1e-3))["mean"]
    assert a == pytest.approx(b, rel=0.05)


def test_slerp_endpoints_and_norm() -> None:
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(3, 16, generator=g), torch.randn(3, 16, generator=g)
    p = slerp(a, b, torch.linspace(0, 1, 5))
    assert p.shape == (3, 5, 16)
    assert torch.allclose(p[:, 0], a, atol=1e-5) and torch.allclose(p[:, -1], b, atol=1e-5)


def test_discontinuity_flags_a_jump() -> None:
    v = models.get_variant("dcgan")
    ev, _ = load_evaluator(None)
    smooth = latent_paths(Linear(v.z_dim), v, ev, S)
    jumpy = latent_paths(Step(), v, ev, dataclasses.replace(S, paths=16))
    assert smooth["images"].shape == (4 * 9, 1, 28, 28)
    assert 1.0 <= smooth["interp_discontinuity"] < 2.0
    # A path that crosses z[0] = 0 has one step of all its change: max/mean = T - 1 = 8;
    # paths that do not cross have no change at all and count 0.
    assert jumpy["interp_discontinuity"] > 2.0
    assert all(c in (0, 1) for c in jumpy["class_changes"])


def test_conditional_paths_keep_their_label() -> None:
    v = models.get_variant("cgan-mlp-2class")
    seen: list[torch.Tensor] = []

    class Spy(nn.Module):
        def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
            seen.append(labels.clone())
            return torch.zeros(len(z), 1, 28, 28)

    ev, _ = load_evaluator(None)
    latent_paths(Spy(), v, ev, S)
    labels = seen[0].reshape(S.paths, S.steps)
    assert (labels == labels[:, :1]).all() and set(labels.unique().tolist()) <= {0, 1}
    seen.clear()
    ppl(Spy(), v, S)
    assert set(torch.cat(seen).unique().tolist()) <= set(v.data.class_ids)


def test_run_row_has_smoothness_and_strip(synthetic_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "r"
    args = ["run", "--variants", "dcgan", "--profile", "smoke", "--kimg", "0.128"]
    args += ["--data-dir", str(synthetic_dir), "--no-progress", "--out", str(out)]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    (row,) = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    assert row["metrics"]["ppl"] > 0 and row["metrics"]["interp_discontinuity"] >= 1.0
    assert row["protocol"]["smoothness"]["epsilon"] == 1e-4
    assert row["protocol"]["smoothness"]["samples"] == 100  # the smoke profile's
    assert "FMGAN_NO_DOWNLOAD" in row["metrics_unavailable"]["ppl_lpips"]
    strip = out / row["interpolation"]["strip"]
    from torchvision.io import decode_image

    img = decode_image(str(strip))
    # 8 paths x 10 steps of 28x28 with 1 px padding.
    assert tuple(img.shape[1:]) == (8 * 29 + 1, 10 * 29 + 1)
    assert len(row["interpolation"]["class_changes"]) == 8
