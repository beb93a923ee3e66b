"""The CI quality gate: train `dcgan` at the `ci` profile (fp32) on the real data and hold it
to the committed thresholds (.ci/thresholds.toml, derived from five seeds' spread by `bench
thresholds`); a broken generator fails every rule. tests/test_mutations.py measures which
injected training bugs it catches."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from torch import nn

from bench.cli import cli
from tests.conftest import invoke

ROOT = Path(__file__).resolve().parent.parent
THRESHOLDS = ROOT / ".ci" / "thresholds.toml"
GATED = "dcgan"
# The gate's own protocol: bounds derived from seeds trained exactly so (.ci/thresholds.toml)
GATE_RUN = ("--variants", GATED, "--profile", "ci", "--precision", "fp32", "--no-progress")


class Noise(nn.Module):
    """A broken generator: uniform noise whatever the input."""

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        g = torch.Generator().manual_seed(0)
        return torch.rand(len(z), 1, 28, 28, generator=g) * 2 - 1


@pytest.mark.integration
def test_gate_passes_for_trained_variants_and_fails_for_noise(
    real_dir: Path, tmp_path: Path
) -> None:
    run = tmp_path / "ci"
    trained = invoke("run", *GATE_RUN, "--data-dir", str(real_dir), "--out", str(run))
    assert trained.exit_code == 0, trained.output
    gate = invoke("check", str(run), "--thresholds", str(THRESHOLDS))
    assert gate.exit_code == 0, gate.output

    from bench.profiles import get_profile
    from bench.scoring import Scorer
    from metrics.family import EvalSettings
    from models import get_variant

    p = get_profile("ci")
    scorer = Scorer(EvalSettings(num_samples=p.eval_samples), str(real_dir))
    rows = [json.loads(x) for x in (run / "results.jsonl").read_text().splitlines()]
    broken = tmp_path / "broken"
    broken.mkdir()
    with open(broken / "results.jsonl", "w") as f:
        for r in rows:
            scored = scorer.score(get_variant(r["variant"]), Noise())
            f.write(json.dumps({**r, "metrics": scored["metrics"]}) + "\n")
    gate = invoke("check", str(broken), "--thresholds", str(THRESHOLDS))
    assert gate.exit_code == 1, gate.output
    rules = [line.split() for line in gate.output.splitlines() if line.startswith(GATED + " ")]
    metrics = {r[1] for r in rules}
    failed = {r[1] for r in rules if "VIOLATION" in r}
    assert rules and failed == metrics, gate.output  # noise breaks a bound of every metric


@pytest.mark.integration
def test_metric_pipeline_reproduces_its_committed_values(
    real_dir: Path, shared_cache: Path
) -> None:
    """The metric-pipeline gate: 1,000 fixed images (.ci/pipeline/samples.npz) scored now
    equal the committed scores (.ci/pipeline/expected.json) within rtol 1e-3 (one sample's
    share for the counting metrics) and with the same protocol, so any change to data
    loading, preprocessing, extractors or metric math fails CI (tests/test_mutations.py
    shows it catches each of nine such bugs)."""
    from tests.conftest import link_offline_pool3

    if not link_offline_pool3(shared_cache):
        pytest.skip("offline Inception not prepared (./setup.sh runs `bench weights fetch`)")
    pipeline = ROOT / ".ci" / "pipeline"
    result = CliRunner().invoke(cli, [
        "score", str(pipeline / "samples.npz"), "--samples", "1000", "--inception-samples",
        "64", "--ppl-samples", "0", "--device", "cpu", "--data-dir", str(real_dir),
        "--expect", str(pipeline / "expected.json"),
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "every metric and protocol matches" in result.output
