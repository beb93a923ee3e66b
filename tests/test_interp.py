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
from metrics.interp import InterpSettings, karras_ppl, latent_paths, ppl, slerp, slerp_rows
from metrics.keys import METRICS

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


def test_a_constant_generator_is_never_the_smoothest() -> None:
    """torch-fidelity's PPL gives a constant G the best value, 0, so it is not ranked; the
    ranked smoothness keys have no value for it instead of the best one."""
    v = models.get_variant("dcgan")
    ev, _ = load_evaluator(None)
    features = lambda x: ev(x)[1]  # noqa: E731
    const = karras_ppl(_Const(), v, S, features)
    assert const["ppl_karras"] == 0.0 and const["ppl_relative"] is None and const["degenerate"]
    paths = latent_paths(_Const(), v, ev, S)
    assert paths["interp_discontinuity"] is None and paths["still_paths"] == S.paths
    assert not METRICS["ppl"].ranked and not METRICS["ppl_karras"].ranked
    assert METRICS["ppl_relative"].ranked and METRICS["interp_discontinuity"].ranked
    # A moving generator: the relative length is at least ~1 (Cauchy-Schwarz along each
    # path; the percentile filter may trim a little) and does not grow with speed the way
    # the raw length does.
    slow, fast = (
        karras_ppl(Linear(v.z_dim), v, S, features),
        karras_ppl(Linear(v.z_dim, 3.0), v, S, features),
    )
    assert slow["ppl_relative"] >= 0.95 and fast["ppl_relative"] >= 0.95
    raw_growth = fast["ppl_karras"] / slow["ppl_karras"]
    assert raw_growth > 3.0
    assert fast["ppl_relative"] / slow["ppl_relative"] < 0.5 * raw_growth


def test_slerp_rows_follow_each_rows_fraction() -> None:
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(4, 16, generator=g), torch.randn(4, 16, generator=g)
    t = torch.tensor([0.0, 1.0, 0.5, 0.25])
    p = slerp_rows(a, b, t)
    assert torch.allclose(p[0], a[0], atol=1e-5) and torch.allclose(p[1], b[1], atol=1e-5)
    for i in range(4):  # the path slerp draws for row i, at row i's own fraction
        assert torch.allclose(p[i], slerp(a[i : i + 1], b[i : i + 1], t[i : i + 1])[0, 0])


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
    # paths that do not cross never change and are left out (and counted).
    assert jumpy["interp_discontinuity"] == pytest.approx(8.0)
    assert 0 < jumpy["still_paths"] < 16
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
