"""`bench sweep`: specs are checked (bad ones are one message), settings are drawn the same
way every time, phase 2 reruns the best settings with more seeds, a rerun resumes, and the
report ranks the settings and tabulates phase 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.runs import RunFolder
from bench.sweep import SweepError, best_settings, parse_spec
from tests.conftest import invoke

BASE = {"variants": ["dcgan-small"], "profile": "smoke", "metric": "fid_fmnist",
        "space": {"optim.lr_g": [1e-4, 5e-4], "optim.betas": ["0.5,0.999", "0.0,0.9"]}}  # fmt: skip


def test_grid_and_random_settings() -> None:
    grid = parse_spec(BASE).points()
    assert grid == [
        {"optim.lr_g": "0.0001", "optim.betas": "0.5,0.999"},
        {"optim.lr_g": "0.0001", "optim.betas": "0.0,0.9"},
        {"optim.lr_g": "0.0005", "optim.betas": "0.5,0.999"},
        {"optim.lr_g": "0.0005", "optim.betas": "0.0,0.9"},
    ]
    rnd = {**BASE, "search": "random", "settings": 6, "sample_seed": 3,
           "space": {"optim.lr_g": {"low": 1e-5, "high": 1e-2, "log": True},
                     "optim.betas": ["0.5,0.999", "0.0,0.9"],
                     "batch_size": {"low": 32, "high": 128, "integer": True}}}  # fmt: skip
    a, b = parse_spec(rnd).points(), parse_spec(rnd).points()
    assert a == b and len(a) == 6  # the same draws every time
    lrs = [float(p["optim.lr_g"]) for p in a]
    assert all(1e-5 <= x <= 1e-2 for x in lrs) and max(lrs) / min(lrs) > 10  # log-spread
    assert all(32 <= int(p["batch_size"]) <= 128 for p in a)
    assert parse_spec({**rnd, "sample_seed": 4}).points() != a


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"variant": ["dcgan"]}, "unknown key(s) ['variant']"),
        ({"variants": ["nope"]}, "unknown variant 'nope'"),
        ({"profile": "huge"}, "unknown profile 'huge'"),
        ({"metric": "fid"}, "unknown metric 'fid'"),
        ({"metric": "precision_fmnist"}, "is not ranked"),
        ({"space": {"optim.lr_g": []}}, "empty grid"),
        ({"space": {}}, "at least one key"),
        (
            {
                "space": {"optim.lr_g": {"low": 1e-3, "high": 1e-4}},
                "search": "random",
                "settings": 2,
            },
            "impossible range",
        ),
        (
            {
                "space": {"optim.lr_g": {"low": 0, "high": 1e-4, "log": True}},
                "search": "random",
                "settings": 2,
            },
            "log range needs low > 0",
        ),
        ({"space": {"optim.lr_g": {"low": 1e-5, "high": 1e-4}}}, "a range needs search"),
        ({"search": "random"}, "needs settings = N"),
        ({"settings": 3}, "the grid has 4 settings"),
        ({"top": 0}, "top must be an integer >= 1"),
        ({"seeds": "3"}, "seeds must be an integer"),
        ({"space": {"optim.momentum": [1e-4]}}, "not a setting of variant dcgan-small"),
        ({"set": {"arch.ngf": "wide"}}, "dcgan-small"),
    ],
)
def test_bad_specs_are_one_message(change: dict, message: str, tmp_path: Path) -> None:
    with pytest.raises(SweepError, match=None) as err:
        parse_spec({**BASE, **change})
    assert message in str(err.value)
    spec = tmp_path / "spec.toml"
    spec.write_text('variants = ["dcgan-small"]\n[space]\n"optim.lr_g" = []\n')
    result = invoke("sweep", spec, "--dry-run")
    assert (
        result.exit_code == 2 and "empty grid" in result.output and "Traceback" not in result.output
    )


def test_best_settings_follow_the_metric_direction() -> None:
    rows = [{"setting": s, "variant": "v", "seed": 0, "value": x}
            for s, x in [("s00", 30.0), ("s01", 10.0), ("s02", None), ("s03", 20.0)]]  # fmt: skip
    assert best_settings({"higher_is_better": False}, rows, 2) == {"v": ["s01", "s03"]}
    assert best_settings({"higher_is_better": True}, rows, 2) == {"v": ["s00", "s03"]}


def test_sweep_runs_both_phases_resumes_and_reports(synthetic_dir: Path, tmp_path: Path) -> None:
    """4 settings at a tiny budget, best 2 x 2 seeds: 6 jobs; a rerun trains nothing; the
    report ranks phase 1 and gives phase 2 with n = 2 per setting."""
    spec = tmp_path / "spec.toml"
    spec.write_text('variants = ["dcgan-small"]\nprofile = "smoke"\nkimg = 0.256\ntop = 2\n'
                    'seeds = 2\n[space]\n"optim.lr_g" = [1e-4, 5e-4]\n'
                    '"optim.betas" = ["0.5,0.999", "0.0,0.9"]\n')  # fmt: skip
    out = tmp_path / "sweep"
    args = ("sweep", spec, "--out", out, "--data-dir", synthetic_dir, "--device", "cpu",
            "--no-progress", "--precision", "fp32")  # fmt: skip
    first = invoke(*args)
    assert first.exit_code == 0, first.output
    record = json.loads((out / "sweep.json").read_text())
    best = record["phase2"]["dcgan-small"]
    assert len(best) == 2 and len(record["settings"]) == 4
    for s in record["settings"]:
        rows = RunFolder(out / s["id"]).latest()
        assert sorted(rows) == ([("dcgan-small", 0), ("dcgan-small", 1)] if s["id"] in best
                                else [("dcgan-small", 0)])  # fmt: skip
        assert all(r["overrides"] == s["overrides"] for r in rows.values())
        assert all(r["precision"] == "fp32" for r in rows.values())  # --precision reaches rows
    values = {s: RunFolder(out / s).latest()[("dcgan-small", 0)]["metrics"]["fid_fmnist"]
              for s in (x["id"] for x in record["settings"])}  # fmt: skip
    assert best == sorted(values, key=values.get)[:2]  # lower FID is better
    again = invoke(*args)
    assert again.exit_code == 0 and "seed 0: ok" not in again.output
    assert again.output.count("finished earlier, skipped") == 8  # 4 + 2 x 2
    changed = tmp_path / "other.toml"
    changed.write_text(spec.read_text().replace("seeds = 2", "seeds = 3"))
    clash = invoke("sweep", changed, "--out", out, "--data-dir", synthetic_dir, "--dry-run")
    assert clash.exit_code == 0  # a dry run only prints
    clash = invoke("sweep", changed, "--out", out, "--data-dir", synthetic_dir)
    assert clash.exit_code == 2 and "another spec" in clash.output

    report = invoke("report", out)
    assert report.exit_code == 0, report.output
    assert "phase 1 (seed 0), ranked by fid_fmnist (lower is better)" in report.output
    phase2 = (out / "report" / "phase2.csv").read_text().splitlines()
    assert len(phase2) == 3 and all(",2," in line for line in phase2[1:])  # n = 2 seeds
    html = (out / "report" / "sweep.html").read_text()
    assert "data:image/png;base64," in html and best[0] in html


def test_sweep_on_submitit_local(synthetic_dir: Path, tmp_path: Path) -> None:
    """The cluster path of a sweep: each phase's settings submitted at once through
    submitit's local engine, then waited for; phase 2 adds seed 1 to the best setting."""
    spec = tmp_path / "spec.toml"
    spec.write_text('variants = ["cgan-mlp-2class"]\nprofile = "smoke"\nkimg = 0.256\ntop = 1\n'
                    'seeds = 2\n[space]\n"optim.lr_g" = [1e-4, 5e-4]\n')  # fmt: skip
    out = tmp_path / "sweep"
    engine = ("--executor", "submitit-local", "--slurm-cpus", "1", "--no-progress")
    result = invoke("sweep", spec, "--out", out, "--data-dir", synthetic_dir, *engine)
    assert result.exit_code == 0, result.output
    assert result.output.count("submitted 1 job(s) to submitit-local") == 3
    record = json.loads((out / "sweep.json").read_text())
    (best,) = record["phase2"]["cgan-mlp-2class"]
    rows = RunFolder(out / best).latest()
    assert sorted(rows) == [("cgan-mlp-2class", 0), ("cgan-mlp-2class", 1)]
    assert all(r["status"] == "ok" and r["cluster"]["engine"] == "submitit-local"
               for r in rows.values())  # fmt: skip
