"""`bench status`: every state a job can be in, read from the folder beside running jobs."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from bench.cli import cli
from bench.runs import RunFolder


def test_status_names_every_state(synthetic_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = ["run", "--variants", "dcgan-small,cgan-mlp", "--seeds", "3", "--profile", "smoke",
            "--kimg", "0.128", "--device", "cpu", "--no-progress", "--data-dir",
            str(synthetic_dir), "--out", str(out)]  # fmt: skip
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    run = RunFolder(out)
    rows = run.results()
    # every checkpoint leaves the job's pace beside it, for `bench status` to read
    progress = json.loads((run.job_dir("dcgan-small", 0) / "progress.json").read_text())
    assert progress["step"] == progress["total_steps"] == 1 and progress["kimg"] == 0.128
    assert progress["train_seconds"] > 0 and progress["train_cpu_seconds"] > 0
    assert progress["img_per_s"] == pytest.approx(128 / progress["train_seconds"])
    # dcgan-small 0 stays done; 1 diverged later; 2 lost its row but kept its checkpoint;
    # cgan-mlp 0 never started; 1 is training now (its job lock held); 2 failed.
    kept = [r for r in rows if (r["variant"], r["seed"]) not in {("dcgan-small", 2),
                                                                 ("cgan-mlp", 0)}]  # fmt: skip
    latest = run.latest()
    kept.append({**latest[("dcgan-small", 1)], "status": "diverged",
                 "error": "non-finite loss at step 1"})  # fmt: skip
    kept.append({**latest[("cgan-mlp", 2)], "status": "failed", "error": "worker died"})
    run.results_path.write_text("".join(json.dumps(r) + "\n" for r in kept))
    shutil.rmtree(run.job_dir("cgan-mlp", 0))
    with run.job_locked("cgan-mlp", 1):
        status = CliRunner().invoke(cli, ["status", str(out)], catch_exceptions=False)
    assert status.exit_code == 0, status.output
    lines = {tuple(line.split()[:3]): line for line in status.output.splitlines()[:-2]}
    assert len(lines) == 6
    assert "done      0.128/0.128 kimg" in lines[("dcgan-small", "seed", "0")]
    assert "diverged" in lines[("dcgan-small", "seed", "1")]
    assert "non-finite loss" in lines[("dcgan-small", "seed", "1")]
    assert (
        "pending   0.128/0.128 kimg  resumes from its checkpoint"
        in lines[("dcgan-small", "seed", "2")]
    )
    assert "pending   -/0.128 kimg" in lines[("cgan-mlp", "seed", "0")]
    # trained to its budget, its lock held: the process is scoring it
    running = f"running   0.128/0.128 kimg  pid {os.getpid()}, trained"
    assert lines[("cgan-mlp", "seed", "1")].endswith(running)
    assert "failed" in lines[("cgan-mlp", "seed", "2")]
    assert status.output.splitlines()[-2] == "1 done, 1 running, 2 pending, 1 failed, 1 diverged"
    # ok rows of dcgan-small 0 and cgan-mlp 1; the other four left (one diverged: finished)
    last = "CPU time: 0.0 h spent by 2 finished job(s); about 0.0 h left for 4 job(s)"
    assert status.output.splitlines()[-1] == last
    after = CliRunner().invoke(cli, ["status", str(out)], catch_exceptions=False)
    assert "cgan-mlp             seed 1   done" in after.output  # the lock is gone


def test_status_of_a_non_run_folder(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["status", str(tmp_path)])
    assert result.exit_code == 2
    assert result.output.strip() == f"Error: {tmp_path}: not a run folder (no config.json)"


def test_status_accounts_cpu_hours_spent_and_left(tmp_path: Path) -> None:
    """Spent: the finished rows' train + eval CPU time; left: each unfinished job's remaining
    kimg at its variant's CPU time per kimg plus its scoring time; a variant without a
    measured row is not estimated, and an older row without CPU time is counted apart."""
    run = RunFolder(tmp_path)
    config = {"run": {"kimg": 10.0}, "variants": {"a": {}, "b": {}}, "seeds": [0, 1, 2]}
    (tmp_path / "config.json").write_text(json.dumps(config))
    ok = {"status": "ok", "kimg": 10.0}
    for row in (
        {**ok, "variant": "a", "seed": 0, "train_cpu_seconds": 3600.0, "eval_cpu_seconds": 360},
        {
            **ok,
            "variant": "a",
            "seed": 2,
            "train_cpu_seconds": 7200.0,
            "eval_cpu_seconds": 360,
            "raw_g": {"eval_cpu_seconds": 360.0},
        },  # the raw G's scoring counts as scoring
        {**ok, "variant": "b", "seed": 0},  # written before rows had CPU times
    ):
        run.append_result(row)
    job = run.job_dir("a", 1)
    job.mkdir(parents=True)
    (job / "checkpoint.pt").write_bytes(b"")
    (job / "losses.csv").write_text("step,kimg,d_loss\n1,2.0,0.5\n2,4.0,0.5\n")
    result = CliRunner().invoke(cli, ["status", str(tmp_path)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    # a/1: 6 kimg x mean(360, 720) s/kimg + mean(360, 720) s = 3,780 s; b/1, b/2 unknown
    assert result.output.splitlines()[-1] == (
        "CPU time: 3.3 h spent by 2 finished job(s) (1 more finished without a CPU time on "
        "record); about 1.1 h left for 1 job(s); 2 job(s) not estimated (no finished job of "
        "their variant)"
    )


def test_status_estimates_a_new_variant_at_a_partly_trained_jobs_pace(tmp_path: Path) -> None:
    """A variant without a finished job is estimated from the progress.json a checkpoint
    left (CPU seconds per kimg so far), scored at the run's mean scoring time; its job line
    says its pace and the training time left; a variant with neither stays unknown."""
    run = RunFolder(tmp_path)
    config = {"run": {"kimg": 10.0}, "variants": {"a": {}, "b": {}, "c": {}}, "seeds": [0, 1]}
    (tmp_path / "config.json").write_text(json.dumps(config))
    for seed, scoring in ((0, 300.0), (1, 500.0)):
        run.append_result({"status": "ok", "kimg": 10.0, "variant": "a", "seed": seed,
                           "train_cpu_seconds": 1000.0, "eval_cpu_seconds": scoring})  # fmt: skip
    job = run.job_dir("b", 0)
    job.mkdir(parents=True)
    (job / "checkpoint.pt").write_bytes(b"")
    (job / "losses.csv").write_text("step,kimg,d_loss\n1,1.0,0.5\n2,2.0,0.5\n")
    progress = {"step": 2, "kimg": 2.0, "train_seconds": 100.0, "train_cpu_seconds": 180.0}
    (job / "progress.json").write_text(json.dumps(progress))
    slower = run.job_dir("b", 1)  # its last process trained at 4 img/s: the pace to expect
    slower.mkdir(parents=True)
    (slower / "checkpoint.pt").write_bytes(b"")
    (slower / "losses.csv").write_text("step,kimg,d_loss\n1,1.0,0.5\n2,2.0,0.5\n")
    (slower / "progress.json").write_text(json.dumps({**progress, "img_per_s": 4.0}))
    (run.job_dir("c", 0)).mkdir(parents=True)
    (run.job_dir("c", 0) / "progress.json").write_text("{not json")  # unreadable: no pace
    result = CliRunner().invoke(cli, ["status", str(tmp_path)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    line = next(x for x in result.output.splitlines() if x.split()[:3] == ["b", "seed", "0"])
    # 2 kimg in 100 s: 20 img/s; 8 kimg left at 50 s each: 400 s
    assert line.endswith("resumes from its checkpoint, 20 img/s, about 0.1 h of training to go")
    line = next(x for x in result.output.splitlines() if x.split()[:3] == ["b", "seed", "1"])
    assert line.endswith("resumes from its checkpoint, 4 img/s, about 0.6 h of training to go")
    # b/0 and b/1: 8 kimg x 90 CPU s + 400 s each; 2,240 s = 0.62 h
    assert result.output.splitlines()[-1] == (
        "CPU time: 0.8 h spent by 2 finished job(s); about 0.6 h left for 2 job(s) (2 at the "
        "pace of a partly trained job); 2 job(s) not estimated (no finished job of their "
        "variant)"
    )
