"""examples/lucic2018: Lucic et al.'s own WGAN-GP networks, loaded as a plugin, match
compare_gan v1's layer sizes, noise and settings, and train under the harness."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from models import registry
from models.plugins import load_plugin
from tests.conftest import ROOT, invoke
from tests.test_plugins import clean_registry  # noqa: F401  (autouse: the registry is reset)

PLUGIN = ROOT / "examples" / "lucic2018" / "lucic_wgan_gp.py"


def compare_gan_sizes(z: int = 64, fc: int = 1024, c: int = 64) -> tuple[int, int]:
    """Trainable parameters of compare_gan v1's generator and (batch-norm-free) critic for
    28x28x1 images, counted from its layer list (weights + biases, BN scale + shift)."""
    flat = 2 * c * 7 * 7
    g = (z * fc + fc) + 2 * fc + (fc * flat + flat) + 2 * flat
    g += (2 * c * c * 16 + c) + 2 * c + (c * 16 + 1)
    d = (16 * c + c) + (c * 2 * c * 16 + 2 * c) + (flat * fc + fc) + (fc + 1)
    return g, d


def test_networks_settings_and_noise_are_compare_gans() -> None:
    load_plugin(str(PLUGIN))
    v = registry.get_variant("lucic-wgan-gp")
    G, D = v.build(0)
    count = [sum(p.numel() for p in net.parameters() if p.requires_grad) for net in (G, D)]
    assert tuple(count) == compare_gan_sizes()
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in D.modules())
    z, labels = v.sample_latents(4096, torch.Generator().manual_seed(0))
    assert labels is None and z.shape == (4096, 64)
    x = G(z[:8])
    assert x.shape == (8, 1, 28, 28) and x.abs().max() <= 1 and D(x).shape == (8,)
    u = torch.erf(z / 2**0.5)  # what G's first layer sees: uniform on [-1, 1]
    assert u.abs().max() < 1 and abs(u.mean()) < 0.02 and abs(u.var() - 1 / 3) < 0.02
    conv = next(m for m in D.modules() if isinstance(m, nn.Conv2d)).weight
    assert conv.abs().max() <= 0.04 and 0.015 < conv.std() < 0.02  # truncated at 2 std
    assert (v.loss, v.batch_size, v.loss_kwargs) == ("wgan-gp", 64, {"gp_weight": 10.0,
                                                                 "n_critic": 1})  # fmt: skip
    o = v.optim
    assert (o.lr_g, o.lr_d, o.betas, o.eps) == (1e-4, 1e-4, (0.5, 0.999), 1e-8)
    assert v.origin and v.origin["file"].endswith("lucic_wgan_gp.py")


def test_it_trains_and_scores_as_a_plugin(synthetic_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    invoke("run", "--plugin", str(PLUGIN), "--variants", "lucic-wgan-gp", "--profile", "smoke",
           "--kimg", "0.256", "--device", "cpu", "--no-progress", "--set", "optim.lr=3e-4",
           "--data-dir", synthetic_dir, "--out", out)  # fmt: skip
    row = json.loads((out / "results.jsonl").read_text().splitlines()[-1])
    assert row["variant"] == "lucic-wgan-gp" and row["status"] == "ok"
    assert row["overrides"] == {"optim.lr": "3e-4"}
    assert row["origin"]["sha256"]
