"""`bench status`: every state a job can be in, read from the folder beside running jobs."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

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
    lines = {tuple(line.split()[:3]): line for line in status.output.splitlines()[:-1]}
    assert len(lines) == 6
    assert "done      0.128/0.128 kimg" in lines[("dcgan-small", "seed", "0")]
    assert "diverged" in lines[("dcgan-small", "seed", "1")]
    assert "non-finite loss" in lines[("dcgan-small", "seed", "1")]
    assert (
        "pending   0.128/0.128 kimg  resumes from its checkpoint"
        in lines[("dcgan-small", "seed", "2")]
    )
    assert "pending   -/0.128 kimg" in lines[("cgan-mlp", "seed", "0")]
    assert f"running   0.128/0.128 kimg  pid {os.getpid()}" in lines[("cgan-mlp", "seed", "1")]
    assert "failed" in lines[("cgan-mlp", "seed", "2")]
    assert status.output.splitlines()[-1] == "1 done, 1 running, 2 pending, 1 failed, 1 diverged"
    after = CliRunner().invoke(cli, ["status", str(out)], catch_exceptions=False)
    assert "cgan-mlp             seed 1   done" in after.output  # the lock is gone


def test_status_of_a_non_run_folder(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["status", str(tmp_path)])
    assert result.exit_code == 2
    assert result.output.strip() == f"Error: {tmp_path}: not a run folder (no config.json)"
