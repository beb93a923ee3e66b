"""`bench check`: thresholds, regressions against a baseline, violations, bad files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from bench.cli import cli


def row(variant: str, seed: int, fid: float, is_: float, status: str = "ok") -> dict:
    m = {"fid_fmnist": fid, "is_fmnist": is_} if status == "ok" else {}
    return {"variant": variant, "seed": seed, "status": status, "metrics": m}


def run_dir(tmp_path: Path, name: str, rows: list[dict]) -> Path:
    d = tmp_path / name
    d.mkdir()
    (d / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return d


def check(run: Path, toml: str, tmp_path: Path, *extra: str) -> Result:
    t = tmp_path / "thresholds.toml"
    t.write_text(toml)
    return CliRunner().invoke(cli, ["check", str(run), "--thresholds", str(t), *extra])


RUN = [row("dcgan", 0, 50.0, 7.0), row("dcgan", 1, 54.0, 7.4), row("wgan-gp", 0, 80.0, 5.0)]


def test_all_hold(tmp_path: Path) -> None:
    run = run_dir(tmp_path, "r", RUN)
    result = check(
        run, "[dcgan]\nfid_fmnist = { max = 60.0 }\nis_fmnist = { min = 6.5 }\n", tmp_path
    )
    assert result.exit_code == 0, result.output
    assert "2 of 2 checks hold" in result.output and "52" in result.output  # mean over seeds


def test_violation_table_and_exit_1(tmp_path: Path) -> None:
    run = run_dir(tmp_path, "r", RUN)
    result = check(run, "[dcgan]\nfid_fmnist = { max = 51.0 }\n", tmp_path)
    assert result.exit_code == 1 and "VIOLATION" in result.output
    assert "0 of 1 checks hold" in result.output


def test_regression_follows_the_metric_direction(tmp_path: Path) -> None:
    base = run_dir(tmp_path, "base", [row("wgan-gp", 0, 100.0, 5.0)])
    toml = (
        "[wgan-gp]\nfid_fmnist = { max_regression = 0.10 }\nis_fmnist = { max_regression = 0.10 }\n"
    )
    better = run_dir(tmp_path, "better", [row("wgan-gp", 0, 80.0, 5.2)])
    ok = check(better, toml, tmp_path, "--baseline", str(base / "results.jsonl"))
    assert ok.exit_code == 0, ok.output
    worse = run_dir(tmp_path, "worse", [row("wgan-gp", 0, 111.0, 4.4)])  # +11% FID, -12% IS
    bad = check(worse, toml, tmp_path, "--baseline", str(base))
    assert bad.exit_code == 1 and bad.output.count("VIOLATION") == 2
    assert "+11.0% worse" in bad.output and "+12.0% worse" in bad.output
    missing = check(worse, toml, tmp_path)
    assert missing.exit_code == 2 and "--baseline" in missing.output


def test_diverged_or_absent_is_a_violation_not_a_crash(tmp_path: Path) -> None:
    run = run_dir(tmp_path, "r", [row("dcgan", 0, 50.0, 7.0), row("dcgan", 1, 0, 0, "diverged")])
    result = check(
        run, "[dcgan]\nfid_fmnist = { max = 60.0 }\n[sngan]\nis_fmnist = { min = 1 }\n", tmp_path
    )
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "seed 1 diverged" in result.output and "no result" in result.output


@pytest.mark.parametrize(
    "toml, needle",
    [
        ("[nope]\nfid_fmnist = { max = 1 }\n", "unknown variant 'nope'; valid: dcgan"),
        ("[dcgan]\nfid = { max = 1 }\n", "unknown metric 'fid'; valid: fid_fmnist, kid_fmnist"),
        ("[dcgan]\nfid_fmnist = { below = 1 }\n", "unknown rule 'below'"),
        ("[dcgan]\nfid_fmnist = { max = 'x' }\n", "must be a number"),
        ("[dcgan\n", "not valid TOML"),
        ("", "no thresholds"),
    ],
)
def test_bad_thresholds_file_exits_2(tmp_path: Path, toml: str, needle: str) -> None:
    run = run_dir(tmp_path, "r", RUN)
    result = check(run, toml, tmp_path)
    assert result.exit_code == 2 and needle in result.output, result.output
    assert "Traceback" not in result.output


def test_expected_scores_tolerance_and_protocol(tmp_path: Path) -> None:
    """`bench score --expect`: relative tolerance on every metric, one sample's share more
    for the counting metrics, the protocol compared exactly, a missing metric is a mismatch,
    a file that is not a score is one message."""
    from bench.errors import BenchError
    from bench.expect import mismatches, read_expected

    proto = {"extractor": "e", "weights_sha256": "ab", "num_samples": 100, "metric_seed": 1,
             "reference": {"split": "test", "size": 10, "images_sha256": "cd"}}  # fmt: skip
    want = {"metrics": {"fid_fmnist": 100.0, "recall_fmnist": 0.5, "kid_fmnist_std": None},
            "protocol": {"fmnist": proto}}  # fmt: skip
    now = {"metrics": {"fid_fmnist": 100.09, "recall_fmnist": 0.509}, "protocol": {"fmnist": proto}}
    assert mismatches(now, want) == []  # 0.09% < 0.1%; 0.009 < 0.0005 + 1/100
    now["metrics"] = {"fid_fmnist": 100.2, "recall_fmnist": 0.52}
    assert [m.split(":")[0] for m in mismatches(now, want)] == ["fid_fmnist", "recall_fmnist"]
    assert mismatches(now, want, rtol=0.05) == []
    now["metrics"] = {"recall_fmnist": 0.5}
    assert mismatches(now, want) == ["fid_fmnist: expected 100, now None"]
    moved = {**proto, "reference": {**proto["reference"], "images_sha256": "ef"}}
    now = {"metrics": want["metrics"], "protocol": {"fmnist": moved}}
    assert mismatches(now, want) == [
        "protocol fmnist.reference.images_sha256: expected 'cd', now 'ef'"
    ]
    assert mismatches({"metrics": want["metrics"], "protocol": {}}, want) == [
        "protocol fmnist: expected, not computed now"
    ]
    bad = tmp_path / "bad.json"
    for text in ("[1]", "{", '{"metrics": {}}'):
        bad.write_text(text)
        with pytest.raises(BenchError, match="--expect"):
            read_expected(bad)


def test_a_plugin_variant_of_the_run_may_be_gated(tmp_path: Path) -> None:
    """`bench check` runs no plugin code: a variant that the run's rows hold is a valid name
    in the thresholds file even when no plugin registered it in this process."""
    run = run_dir(tmp_path, "r", [row("lsgan", 0, 300.0, 3.9)])
    result = check(run, "[lsgan]\nfid_fmnist = { max = 400.0 }\n", tmp_path)
    assert result.exit_code == 0, result.output
    result = check(run, "[lsgan]\nfid_fmnist = { max = 200.0 }\n", tmp_path)
    assert result.exit_code == 1 and "VIOLATION" in result.output
    result = check(run, "[mygan]\nfid_fmnist = { max = 200.0 }\n", tmp_path)
    assert result.exit_code == 2 and "unknown variant 'mygan'" in result.output


def test_thresholds_from_seed_spread_gate_each_seed_and_the_bad_side(tmp_path: Path) -> None:
    """`bench thresholds` bounds each metric at mean -/+ k std on its bad side; the file it
    writes is a valid gate that every clean seed passes and a value beyond the bound fails."""
    fids, iss = [50.0, 54.0, 52.0, 51.0, 53.0], [7.0, 7.4, 7.2, 7.1, 7.3]
    rows = [row("dcgan", s, f, i) for s, (f, i) in enumerate(zip(fids, iss, strict=True))]
    rows.append(row("wgan-gp", 0, 80.0, 5.0))
    spread = run_dir(tmp_path, "spread", rows)
    out = tmp_path / "gate.toml"
    result = CliRunner().invoke(cli, ["thresholds", str(spread), "--variants", "dcgan",
                                      "--metrics", "fid_fmnist,is_fmnist", "--sigmas", "2",
                                      "--out", str(out)])  # fmt: skip
    assert result.exit_code == 0, result.output
    text = out.read_text()
    std_fid = (sum((f - 52.0) ** 2 for f in fids) / 4) ** 0.5  # 1.58, sample std
    assert f"fid_fmnist = {{ max = {52.0 + 2 * std_fid:.6g} }}" in text  # lower is better
    assert "is_fmnist = { min = 6.88377 }" in text  # 7.2 - 2 * 0.158: higher is better
    assert "wgan-gp" not in text
    for seed in range(5):  # each clean seed alone passes the derived gate
        one = run_dir(tmp_path, f"seed{seed}", [rows[seed]])
        gate = CliRunner().invoke(cli, ["check", str(one), "--thresholds", str(out)])
        assert gate.exit_code == 0, gate.output
    worse = run_dir(tmp_path, "worse", [row("dcgan", 0, 52.0 + 2.1 * std_fid, 7.2)])
    gate = CliRunner().invoke(cli, ["check", str(worse), "--thresholds", str(out)])
    assert gate.exit_code == 1 and "fid_fmnist" in gate.output and "VIOLATION" in gate.output
    better = run_dir(tmp_path, "better", [row("dcgan", 0, 40.0, 7.2)])
    gate = CliRunner().invoke(cli, ["check", str(better), "--thresholds", str(out)])
    assert gate.exit_code == 0, gate.output  # one-sided: an improvement passes

    two = tmp_path / "two.toml"
    result = CliRunner().invoke(cli, ["thresholds", str(spread), "--variants", "dcgan",
                                      "--metrics", "fid_fmnist", "--sigmas", "2",
                                      "--two-sided", "fid_fmnist", "--out", str(two)])  # fmt: skip
    assert result.exit_code == 0, result.output
    lo, hi = 52.0 - 2 * std_fid, 52.0 + 2 * std_fid
    assert f"fid_fmnist = {{ min = {lo:.6g}, max = {hi:.6g} }}" in two.read_text()
    gate = CliRunner().invoke(cli, ["check", str(better), "--thresholds", str(two)])
    assert gate.exit_code == 1 and "min" in gate.output, gate.output  # beyond noise either way
    gate = CliRunner().invoke(cli, ["check", str(spread), "--thresholds", str(two)])
    assert gate.exit_code == 0, gate.output


@pytest.mark.parametrize(
    ("rows", "args", "needle"),
    [
        ([row("dcgan", 0, 50.0, 7.0), row("dcgan", 1, 51.0, 7.1)], [], "at least 3"),
        ([row("dcgan", s, 50.0 + s, 7.0) for s in range(3)] + [row("dcgan", 3, 0, 0, "diverged")],
         [], "clean seeds only"),
        ([row("dcgan", s, 50.0 + s, 7.0) for s in range(3)], ["--metrics", "fid"], "unknown"),
        ([row("dcgan", s, 50.0 + s, 7.0) for s in range(3)], ["--metrics", "kid_fmnist"],
         "not measured"),
        ([row("dcgan", s, 50.0 + s, 7.0) for s in range(3)], ["--variants", "sngan"], "no rows"),
        ([row("dcgan", s, 50.0 + s, 7.0) for s in range(3)], ["--two-sided", "is_fmnist"],
         "not among the bounded metrics"),
    ],
)  # fmt: skip
def test_thresholds_refuses_a_spread_it_cannot_trust(
    tmp_path: Path, rows: list[dict], args: list[str], needle: str
) -> None:
    spread = run_dir(tmp_path, "spread", rows)
    result = CliRunner().invoke(cli, ["thresholds", str(spread), "--metrics", "fid_fmnist", *args])
    assert result.exit_code == 2 and needle in result.output, result.output
    assert "Traceback" not in result.output
