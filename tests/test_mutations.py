"""What the regression gates catch: realistic bugs injected with monkeypatch (never product
options), each run through the gate that should catch it.

The metric-pipeline gate (`bench score .ci/pipeline/samples.npz --expect
.ci/pipeline/expected.json`, in CI through tests/test_ci_gate.py) must catch every change
to data loading, preprocessing, an extractor or a metric's math. Each mutation runs in the
test's private cache, so reference features are extracted through the mutated code too (a
cached reference would hide a bug on that side).

The training gate (tests/test_ci_gate.py: `dcgan` at the `ci` profile in fp32 against
.ci/thresholds.toml) must catch each injected training regression.

Marked ``mutation`` and kept out of the default run: `python -m pytest -m mutation -rA`
prints the detection table (PASSED = caught); the README and docs/reports.md give its last
result.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner
from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

from bench.cli import cli
from tests.conftest import ROOT, link_offline_pool3

PIPELINE = ROOT / ".ci" / "pipeline"
SCORE = ["score", str(PIPELINE / "samples.npz"), "--samples", "1000", "--inception-samples",
         "64", "--ppl-samples", "0", "--device", "cpu", "--expect",
         str(PIPELINE / "expected.json")]  # fmt: skip

pytestmark = [pytest.mark.mutation, pytest.mark.integration]


def _evaluator_range(mp: pytest.MonkeyPatch) -> None:
    """The evaluator sees 0..1 instead of -1..1 (a normalisation copied from elsewhere)."""
    from metrics.evaluator import FMNISTEvaluator

    def prepare(x: torch.Tensor) -> torch.Tensor:
        return x.float().div(255.0) if x.dtype == torch.uint8 else x

    mp.setattr(FMNISTEvaluator, "prepare", staticmethod(prepare))


def _inception_resize(mp: pytest.MonkeyPatch) -> None:
    """torch's bilinear resize instead of torch-fidelity's TF1-compatible one."""
    import torch_fidelity.feature_extractor_inceptionv3 as fx

    def resize(x: torch.Tensor, size: tuple[int, int], align_corners: bool) -> torch.Tensor:
        return F.interpolate(x, size=size, mode="bilinear", align_corners=align_corners)

    mp.setattr(fx, "interpolate_bilinear_2d_like_tensorflow1x", resize)


def _inception_channels(mp: pytest.MonkeyPatch) -> None:
    """Gray images put in the red channel only instead of replicated to RGB."""
    from metrics import suite

    original = suite.extract

    def extract(extractor: torch.nn.Module, images: torch.Tensor, batch_size: int = 500):
        if images.shape[1] == 1 and isinstance(extractor, FeatureExtractorInceptionV3):
            images = torch.cat([images, torch.zeros_like(images), torch.zeros_like(images)], 1)
        return original(extractor, images, batch_size)

    mp.setattr(suite, "extract", extract)


def _inception_range(mp: pytest.MonkeyPatch) -> None:
    """Images reach Inception at half their value range (0..127 for 0..255)."""
    from metrics import suite

    original = suite.extract

    def extract(extractor: torch.nn.Module, images: torch.Tensor, batch_size: int = 500):
        if isinstance(extractor, FeatureExtractorInceptionV3):
            images = images // 2
        return original(extractor, images, batch_size)

    mp.setattr(suite, "extract", extract)


def _fid_covariance(mp: pytest.MonkeyPatch) -> None:
    """The generated side's covariance 1% too large in FID (metrics/fid.py's np.cov)."""
    import numpy as np

    cov, calls = np.cov, [0]

    def skewed(a, *args, **kwargs):
        calls[0] += 1
        return cov(a, *args, **kwargs) * (1.01 if calls[0] % 2 else 1.0)

    mp.setattr(np, "cov", skewed)


def _prc_k(mp: pytest.MonkeyPatch) -> None:
    """Precision/recall with k = 4 instead of 3."""
    from metrics import prc

    original = prc.precision_recall
    mp.setattr(prc, "precision_recall", lambda gen, ref, k: original(gen, ref, k + 1))


def _kid_kernel(mp: pytest.MonkeyPatch) -> None:
    """KID's generated-vs-generated kernel sum 1% too large."""
    import torch_fidelity.metric_kid as mk

    original = mk.mmd2

    def mmd2(K_XX, K_XY, K_YY, unit_diagonal=False, mmd_est="unbiased"):
        return original(K_XX * 1.01, K_XY, K_YY, unit_diagonal, mmd_est)

    mp.setattr(mk, "mmd2", mmd2)


def _test_split_rotated(mp: pytest.MonkeyPatch) -> None:
    """The test split's images parsed transposed (rows and columns swapped)."""
    from bench import data

    original = data.load_part

    def load_part(options, part, data_dir=None):
        d = original(options, part, data_dir)
        if part == "test":
            d = dataclasses.replace(d, images=d.images.transpose(-1, -2).contiguous())
        return d

    for module in ("bench.data", "bench.scoring", "bench.sanity"):
        mp.setattr(f"{module}.load_part", load_part, raising=False)


def _is_temperature(mp: pytest.MonkeyPatch) -> None:
    """The Inception Score on softmax(logits / 2) (logits scaled before the softmax)."""
    from metrics import isc

    original = isc.inception_score
    mp.setattr(isc, "inception_score", lambda logits, settings: original(logits / 2, settings))


MUTATIONS: dict[str, Callable[[pytest.MonkeyPatch], None]] = {
    "evaluator value range 0..1": _evaluator_range,
    "Inception resize: torch bilinear": _inception_resize,
    "Inception channels: gray in red only": _inception_channels,
    "Inception value range halved": _inception_range,
    "FID: one covariance +1%": _fid_covariance,
    "precision/recall k 3 -> 4": _prc_k,
    "KID: K_XX +1%": _kid_kernel,
    "test split transposed": _test_split_rotated,
    "IS: logits / 2 before softmax": _is_temperature,
}


@pytest.fixture
def pool3_in_private_cache(tmp_path: Path) -> None:
    """The offline pool3 linked into the test's private cache (nothing else cached)."""
    if not link_offline_pool3(tmp_path / "cache"):
        pytest.skip("offline Inception not prepared (./setup.sh runs `bench weights fetch`)")


def test_the_unchanged_pipeline_passes(
    real_dir: Path, pool3_in_private_cache: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("FMGAN_CACHE_DIR", str(tmp_path / "cache"))
    result = CliRunner().invoke(cli, [*SCORE, "--data-dir", str(real_dir)])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("name", list(MUTATIONS))
def test_the_pipeline_gate_catches(
    name: str, real_dir: Path, pool3_in_private_cache: None, monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:  # fmt: skip
    monkeypatch.setenv("FMGAN_CACHE_DIR", str(tmp_path / "cache"))  # no shared reference
    MUTATIONS[name](monkeypatch)
    result = CliRunner().invoke(cli, [*SCORE, "--data-dir", str(real_dir)])
    caught = [line.strip() for line in result.output.splitlines() if "MISMATCH" in line]
    print(f"{name}: exit {result.exit_code}; {len(caught)} mismatch(es): {caught[:4]}")
    assert result.exit_code == 1 and caught, result.output


# ----------------------------------------------------------- training regressions: the CI gate


def _lr_10x(mp: pytest.MonkeyPatch) -> None:
    """Every learning rate 10x its recipe's (a unit slip: 2e-3 for 2e-4)."""
    original = torch.optim.Adam.__init__

    def init(self, params, lr=1e-3, *args, **kwargs):
        original(self, params, lr * 10, *args, **kwargs)

    mp.setattr(torch.optim.Adam, "__init__", init)


def _betas_swapped(mp: pytest.MonkeyPatch) -> None:
    """Adam's betas given in the wrong order ((0.999, 0.5) for (0.5, 0.999))."""
    original = torch.optim.Adam.__init__

    def init(self, params, lr=1e-3, betas=(0.9, 0.999), *args, **kwargs):
        original(self, params, lr, (betas[1], betas[0]), *args, **kwargs)

    mp.setattr(torch.optim.Adam, "__init__", init)


def _batchnorm_removed(mp: pytest.MonkeyPatch) -> None:
    """BatchNorm layers pass their input through (removed from G and D)."""
    mp.setattr(torch.nn.BatchNorm2d, "forward", lambda self, x: x)
    mp.setattr(torch.nn.BatchNorm1d, "forward", lambda self, x: x)


def _labels_flipped(mp: pytest.MonkeyPatch) -> None:
    """D's real and fake targets swapped for a quarter of each batch (a slicing bug)."""
    from models.losses import NonSaturatingBCE as bce

    original = bce.d_loss

    def d_loss(self, D, real, fake, labels_real, labels_fake):
        q = len(real) // 4
        real2, fake2 = torch.cat([fake[:q], real[q:]]), torch.cat([real[:q], fake[q:]])
        lr2 = labels_real if labels_real is None else torch.cat([labels_fake[:q], labels_real[q:]])
        lf2 = labels_fake if labels_fake is None else torch.cat([labels_real[:q], labels_fake[q:]])
        return original(self, D, real2, fake2, lr2, lf2)

    mp.setattr(bce, "d_loss", d_loss)


def _ema_off(mp: pytest.MonkeyPatch) -> None:
    """G_ema never updated (the EMA step dropped in a refactor): G_ema stays at its init."""
    mp.setattr("bench.harness.update_ema", lambda ema, model, decay: None)


def _data_range(mp: pytest.MonkeyPatch) -> None:
    """Training images mapped to [0, 1] while G outputs [-1, 1]."""
    from bench import data

    def to_model_range(batch, value_range=(-1.0, 1.0)):
        return batch.to(torch.float32).div(255.0)

    mp.setattr(data, "to_model_range", to_model_range)
    mp.setattr("bench.harness.to_model_range", to_model_range)


def _half_classes(mp: pytest.MonkeyPatch) -> None:
    """Half of the classes silently dropped from the training data (classes 0-4 kept)."""
    from bench import data

    original = data.load_part

    def load_part(options, part, data_dir=None):
        d = original(options, part, data_dir)
        if part == "train":
            keep = d.labels < 5
            d = dataclasses.replace(d, images=d.images[keep], labels=d.labels[keep])
        return d

    for module in ("bench.data", "bench.jobs", "bench.executor"):
        mp.setattr(f"{module}.load_part", load_part, raising=False)


def _output_squashed(mp: pytest.MonkeyPatch) -> None:
    """G's output squashed to half its range (tanh(x) / 2) when sampled for scoring."""
    from metrics import suite

    original = suite.to_uint8
    mp.setattr(suite, "to_uint8", lambda x, lo=-1.0, hi=1.0: original(x * 0.5, lo, hi))


TRAINING: dict[str, Callable[[pytest.MonkeyPatch], None]] = {
    "learning rates 10x": _lr_10x,
    "Adam betas swapped": _betas_swapped,
    "BatchNorm removed": _batchnorm_removed,
    "D's labels flipped for 1/4 of the batch": _labels_flipped,
    "EMA never updated": _ema_off,
    "training images in [0, 1]": _data_range,
    "classes 5-9 dropped from training": _half_classes,
    "G output squashed to half range": _output_squashed,
}


def _gate(real_dir: Path, out: Path, *extra: str) -> tuple[int, str]:
    """The CI gate as tests/test_ci_gate.py runs it: train, then `bench check`."""
    from tests.test_ci_gate import GATE_RUN, THRESHOLDS

    runner = CliRunner()
    args = ["run", *GATE_RUN, "--data-dir", str(real_dir), "--out", str(out), *extra]
    trained = runner.invoke(cli, args)
    if trained.exit_code != 0:
        return trained.exit_code, trained.output
    gate = runner.invoke(cli, ["check", str(out), "--thresholds", str(THRESHOLDS)])
    return gate.exit_code, gate.output


@pytest.mark.parametrize("name", list(TRAINING))
def test_the_training_gate_catches(
    name: str, real_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    TRAINING[name](monkeypatch)
    code, output = _gate(real_dir, tmp_path / "run", "--inception-samples", "0")
    rules = [line.strip() for line in output.splitlines() if "VIOLATION" in line]
    print(f"{name}: exit {code}; {rules}")
    assert code == 1 and rules, output
