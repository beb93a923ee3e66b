"""The sanity ladder: the rule itself on chosen numbers, then every metric on real
Fashion-MNIST with both extractors (ranked metrics must order it, unranked ones must still
fail it, so a reason in the registry cannot go stale)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from bench.cli import cli
from bench.sanity import COPYING_KEYS, COPYING_RUNGS, RUNGS, check_copying, check_order, rungs
from metrics import inception as inc
from metrics.evaluator import WEIGHTS_PATH
from metrics.keys import METRICS
from tests.conftest import USER_CACHE, link_offline_pool3

USER_POOL3 = USER_CACHE / inc.OFFLINE_DIR / inc.OFFLINE_FILE
LADDER = dict(zip(RUNGS, (1.0, 50.0, 100.0, 200.0, 300.0, 400.0), strict=True))  # FID-like


def test_the_ladder_rule() -> None:
    assert check_order("fid_fmnist", LADDER).ok
    assert check_order("is_fmnist", {r: -v for r, v in LADDER.items()}).ok  # higher is better
    tie = {**LADDER, "sigma 0.2": 50.0}  # a tie inside the noise ladder is allowed
    assert check_order("fid_fmnist", tie).ok
    flat = dict.fromkeys(RUNGS, 1.0)  # a metric that sees nothing
    assert "sigma 0.4 scores as well as real" in check_order("fid_fmnist", flat).why
    noisier_better = {**LADDER, "sigma 0.2": 40.0}
    assert "sigma 0.2 scores better than sigma 0.1" in check_order("fid_fmnist", noisier_better).why
    collapse_best = {**LADDER, "constant": 0.5}
    assert "constant scores as well as real" in check_order("fid_fmnist", collapse_best).why
    missing = {**LADDER, "uniform": None}
    assert "no value for uniform" in check_order("fid_fmnist", missing).why


def test_rungs_are_what_they_say(real_dir: Path) -> None:
    sets = rungs(str(real_dir), 300, draw=0)
    assert list(sets) == [*RUNGS, *COPYING_RUNGS]
    real, labels = sets["real"]
    assert real.shape == (300, 1, 28, 28) and len(labels) == 300
    noise = [(sets[r][0].float() - real.float()).std().item() for r in RUNGS[1:4]]
    assert noise[0] < noise[1] < noise[2]  # clipping shrinks the nominal sigma a little
    assert 0.08 * 255 < noise[0] < 0.1 * 255
    assert (sets["constant"][0] == real[:1]).all()
    assert sets["real"][0].equal(rungs(str(real_dir), 300, draw=0)["real"][0])
    assert not sets["real"][0].equal(rungs(str(real_dir), 300, draw=1)["real"][0])


@pytest.mark.skipif(not WEIGHTS_PATH.is_file(), reason="evaluator weights missing")
def test_every_metric_on_the_real_ladder(real_dir: Path, shared_cache: Path) -> None:
    """Evaluator at 2,000 images per rung (the `ci` profile's count; docs/metrics.md has the
    ladder at 10,000 as well), and the Inception at 64 when the offline pool3 is prepared
    (./setup.sh): every ranked metric orders the ladder, every unranked one fails it. `bench
    sanity` prints the table and exits 0 only when the ranked ones pass."""
    args = ["sanity", "--samples", "2000", "--data-dir", str(real_dir), "--json"]
    if link_offline_pool3(shared_cache):
        args += ["--inception-samples", "64"]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    checks = {c["metric"]: c for c in report[0]["checks"]}
    expected = {k for k, m in METRICS.items() if m.group in ("fmnist", "conditional")}
    if USER_POOL3.is_file():
        expected |= {k for k, m in METRICS.items() if m.group == "inception"}
        expected -= {"is_inception"}  # the offline pool3 has no logits
        expected -= {"ct_inception"}  # only with --copying-inception (60k Inception passes)
    expected = {k for k in expected if METRICS[k].spread_of is None}
    assert set(checks) == expected
    for key, c in checks.items():
        if key == "ct_inception" and c["values"]["real"] is None:
            continue  # 64 Inception samples fill no cell of 20: too few for the test
        expect = key in COPYING_KEYS or METRICS[key].ranked  # copying: its own rule, passed
        assert c["ok"] == expect, (key, c["why"], c["values"])


def test_the_copying_rule() -> None:
    """Copies flagged, held-out real images not, noise positive; each way to break that is
    named."""
    good = {"real": -40.0, "held-out": 0.5, "copies+noise": -20.0, "uniform": 30.0}
    assert check_copying("ct_fmnist", good).ok
    for rung, value, why in (
        ("real", -2.0, "training images are not flagged"),
        ("copies+noise", 1.0, "half copies are not flagged"),
        ("held-out", -3.5, "held-out real images are flagged"),
        ("held-out", 3.5, "held-out real images are flagged"),
        ("uniform", -1.0, "uniform noise"),
        ("real", None, "no value for real"),
    ):
        check = check_copying("ct_fmnist", {**good, rung: value})
        assert not check.ok and why in check.why, (rung, value, check.why)
