"""What the regression gates catch: realistic bugs injected with monkeypatch (never product
options), each run through the gate that should catch it.

The metric-pipeline gate (`bench score .ci/pipeline/samples.npz --expect
.ci/pipeline/expected.json`, in CI through tests/test_ci_gate.py) must catch every change
to data loading, preprocessing, an extractor or a metric's math. Each mutation runs in the
test's private cache, so reference features are extracted through the mutated code too (a
cached reference would hide a bug on that side).

Marked ``mutation`` and kept out of the default run: `python -m pytest -m mutation -rA`
prints the detection table (PASSED = caught); the README gives its last result.
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
from metrics import inception as inc
from tests.conftest import ROOT, USER_CACHE

PIPELINE = ROOT / ".ci" / "pipeline"
SCORE = ["score", str(PIPELINE / "samples.npz"), "--samples", "1000", "--inception-samples",
         "64", "--ppl-samples", "0", "--device", "cpu", "--expect",
         str(PIPELINE / "expected.json")]  # fmt: skip
USER_POOL3 = USER_CACHE / inc.OFFLINE_DIR / inc.OFFLINE_FILE

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
    if not USER_POOL3.is_file():
        pytest.skip("offline Inception not prepared (./setup.sh runs `bench weights fetch`)")
    inc.offline_pool3_weights(USER_CACHE)  # records the file's sha256 if not yet done
    folder = tmp_path / "cache" / inc.OFFLINE_DIR
    folder.mkdir(parents=True, exist_ok=True)
    for name in (inc.OFFLINE_FILE, inc.OFFLINE_FILE + ".sha256"):
        (folder / name).symlink_to(USER_POOL3.with_name(name))


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
