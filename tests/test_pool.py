"""`bench run --jobs N`: rows equal a one-at-a-time run's, crashes stay in their job, Ctrl-C
checkpoints every running job, concurrent appends never tear, and the display names every
running job."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from bench.checkpoint import load_checkpoint
from bench.data import random_dataset
from bench.engines import pool
from bench.errors import BenchError, RunFolderError
from bench.executor import execute
from bench.harness import Trainer, TrainSettings
from bench.jobs import RunPlan
from bench.profiles import get_profile
from bench.provenance import cpu_description, cpu_model
from bench.runs import RunFolder, read_results
from models.registry import get_variant
from tests.conftest import ROOT, bench_process

TIMING = {"eval_seconds", "eval_cpu_seconds", "finished_at", "img_per_s", "run_id",
          "train_seconds", "train_cpu_seconds", "wall_seconds"}  # fmt: skip


def _plan(data_dir: Path, **kw) -> RunPlan:
    base = dict(
        profile=get_profile("smoke"),
        variants=("dcgan-small", "cgan-mlp-2class", "wgan-gp"),
        seeds=(0,),
        kimg=0.768,
        data_dir=str(data_dir),
        progress=False,
        threads=1,
    )
    return RunPlan(**{**base, **kw})


def _without_timing(row: dict) -> dict:
    return {k: v for k, v in row.items() if k not in TIMING}


def test_parallel_rows_equal_sequential_rows(synthetic_dir: Path, tmp_path: Path) -> None:
    """Three jobs, two at a time, one thread each: every row (metrics, protocol, steps,
    tracked curve, loss log) and every checkpoint equals a one-at-a-time run's."""
    plan = _plan(synthetic_dir)
    seq, par = RunFolder(tmp_path / "seq"), RunFolder(tmp_path / "par")
    execute(plan, seq, echo=lambda s: None, argv=["test"])
    lines: list[str] = []
    rows = execute(plan, par, echo=lines.append, argv=["test"], jobs=2)
    assert sorted((r["variant"], r["status"]) for r in rows) == [
        ("cgan-mlp-2class", "ok"), ("dcgan-small", "ok"), ("wgan-gp", "ok"),
    ]  # fmt: skip
    assert "3 job(s), up to 2 at a time (1 thread(s) each)" in lines
    assert sum("started on cpu" in line for line in lines) == 3
    a, b = seq.latest(), par.latest()
    assert a.keys() == b.keys()
    for key in a:
        assert _without_timing(a[key]) == _without_timing(b[key]), key
        assert b[key]["threads"] == 1 and "metrics" in b[key]
        assert b[key]["cpu"] == cpu_description() and b[key]["train_cpus"] == [cpu_model()]
        for name in ("losses.csv", "tracked.csv"):
            assert (seq.job_dir(*key) / name).read_text() == (par.job_dir(*key) / name).read_text()
        ca = load_checkpoint(seq.job_dir(*key) / "checkpoint.pt")
        cb = load_checkpoint(par.job_dir(*key) / "checkpoint.pt")
        assert all(torch.equal(ca["G_ema"][k], cb["G_ema"][k]) for k in ca["G_ema"])
    # A rerun with --jobs skips every finished job and appends nothing.
    again: list[str] = []
    assert execute(plan, par, echo=again.append, argv=["test"], jobs=2) == []
    assert sum("finished earlier, skipped" in line for line in again) == 3
    assert len(par.results()) == 3


def test_a_user_error_in_a_worker_stops_new_jobs(synthetic_dir: Path, tmp_path: Path) -> None:
    """A job whose folder holds a checkpoint of another recipe is a user error: the command
    ends with that one message, the job running beside it finishes and keeps its row, and
    no later job starts."""
    run = RunFolder(tmp_path / "run")
    other = dataclasses.replace(get_variant("dcgan-small"), batch_size=64)
    data = random_dataset(128, 28, tuple(range(10)))
    settings = TrainSettings(kimg=0.064, progress=False)
    Trainer(other, data, settings, run.job_dir("dcgan-small", 0)).train()
    plan = _plan(synthetic_dir, variants=("dcgan-small", "cgan-mlp-2class", "dcgan"), kimg=0.256)
    with pytest.raises(BenchError, match="different configuration"):
        execute(plan, run, echo=lambda s: None, argv=["test"], jobs=2)
    assert [(r["variant"], r["status"]) for r in run.results()] == [("cgan-mlp-2class", "ok")]
    assert not run.job_dir("dcgan", 0).exists()


def _wait_for(paths: list[Path], proc: subprocess.Popen, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not all(p.exists() for p in paths):
        assert proc.poll() is None, proc.communicate()[0]
        assert time.monotonic() < deadline, "jobs did not reach their first checkpoint"
        time.sleep(0.05)


def _run_args(synthetic_dir: Path, out: Path, kimg: str) -> list[str]:
    return [
        "run", "--variants", "dcgan,dcgan-small", "--profile", "smoke", "--kimg", kimg,
        "--device", "cpu", "--data-dir", str(synthetic_dir), "--no-progress", "--jobs", "2",
        "--out", str(out),
    ]  # fmt: skip


def test_a_killed_worker_fails_alone_and_resumes(synthetic_dir: Path, tmp_path: Path) -> None:
    """SIGKILL one worker mid-training: its job gets a `failed` row naming the signal, the
    other job finishes ok, and the same command resumes the killed job from its checkpoint."""
    out = tmp_path / "run"
    args = _run_args(synthetic_dir, out, "2")  # dcgan: 16 steps, a checkpoint every 4
    proc = bench_process(*args)
    run = RunFolder(out)
    lock = run.job_dir("dcgan", 0) / ".lock"
    _wait_for([run.job_dir("dcgan", 0) / "checkpoint.pt"], proc)
    victim = int(lock.read_text())  # the worker holding dcgan's job lock
    assert victim != proc.pid
    os.kill(victim, signal.SIGKILL)
    output, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, output
    latest = run.latest()
    assert latest[("dcgan", 0)]["status"] == "failed"
    assert "SIGKILL" in latest[("dcgan", 0)]["error"]
    assert latest[("dcgan-small", 0)]["status"] == "ok"
    assert "1 ok, 1 not ok" in output
    step = load_checkpoint(run.job_dir("dcgan", 0) / "checkpoint.pt")["step"]

    again = bench_process(*args)
    output, _ = again.communicate(timeout=600)
    assert again.returncode == 0, output
    assert "dcgan-small seed 0: finished earlier, skipped" in output
    row = run.latest()[("dcgan", 0)]
    assert row["status"] == "ok" and row["resumed_from_step"] == step


def _steps(ckpts: list[Path]) -> dict[str, int]:
    return {p.parent.parent.name: load_checkpoint(p)["step"] for p in ckpts}


def _wait_for_steps_past(
    ckpts: list[Path], before: dict[str, int], proc: subprocess.Popen, timeout: float = 180
) -> None:
    """Until every checkpoint exists and holds a later step than ``before``."""
    deadline = time.monotonic() + timeout
    seen: dict[Path, int] = {}
    while True:
        assert proc.poll() is None, proc.communicate()[0]
        assert time.monotonic() < deadline, "jobs did not write a later checkpoint"
        mtimes = {p: p.stat().st_mtime_ns for p in ckpts if p.exists()}
        if len(mtimes) == len(ckpts) and mtimes != seen:
            seen = mtimes
            if all(s > before.get(v, 0) for v, s in _steps(ckpts).items()):
                return
        time.sleep(0.05)


def test_sigterm_and_ctrl_c_checkpoint_every_running_job(
    synthetic_dir: Path, tmp_path: Path
) -> None:
    """SIGTERM (a scheduler) to `bench run --jobs 2`, then SIGINT (Ctrl-C) to the same
    command run again: each time exit 130 with the resume message, no rows, and every job
    keeps a checkpoint at a later step than before; a third run finishes both from where
    the second stopped."""
    out = tmp_path / "run"
    args = _run_args(synthetic_dir, out, "6")  # both jobs still training when the signals come
    run = RunFolder(out)
    ckpts = [run.job_dir(v, 0) / "checkpoint.pt" for v in ("dcgan", "dcgan-small")]
    steps: dict[str, int] = {}
    for sig in (signal.SIGTERM, signal.SIGINT):
        proc = bench_process(*args)
        _wait_for_steps_past(ckpts, steps, proc)
        proc.send_signal(sig)
        output, _ = proc.communicate(timeout=300)
        assert proc.returncode == 130, (sig, output)
        assert "run the same command again to resume" in output
        assert "dcgan seed 0: stopped at step" in output and "dcgan-small seed 0: stopped" in output
        assert not run.results_path.exists()
        new = _steps(ckpts)
        assert all(new[v] > steps.get(v, 0) for v in new), (sig, steps, new)
        steps = new

    again = bench_process(*args)
    output, _ = again.communicate(timeout=600)
    assert again.returncode == 0, output
    rows = run.latest()
    for v in ("dcgan", "dcgan-small"):
        assert rows[(v, 0)]["status"] == "ok" and rows[(v, 0)]["resumed_from_step"] == steps[v]


_APPEND = """
import sys
from pathlib import Path
from bench.runs import RunFolder
run = RunFolder(Path(sys.argv[1]))
for i in range(100):
    run.append_result({"variant": "w" + sys.argv[2], "seed": i, "status": "ok", "pad": "x" * 5000})
"""


def test_concurrent_appends_never_tear(tmp_path: Path) -> None:
    """Four processes append 100 rows of 5 kB each at once: 400 whole rows."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen([sys.executable, "-c", _APPEND, str(tmp_path), str(t)], env=env)
        for t in range(4)
    ]
    assert [p.wait(timeout=120) for p in procs] == [0] * 4
    rows = read_results(tmp_path / "results.jsonl")
    assert len(rows) == 400
    assert {(r["variant"], r["seed"]) for r in rows} == {
        (f"w{t}", i) for t in range(4) for i in range(100)
    }


def test_a_job_is_trained_by_one_process_at_a_time(tmp_path: Path) -> None:
    run = RunFolder(tmp_path)
    taken = pytest.raises(RunFolderError, match=r"dcgan seed 0 .* being trained by another")
    with run.job_locked("dcgan", 0):
        with taken, run.job_locked("dcgan", 0):
            pass
        with run.job_locked("dcgan", 1):  # other jobs are free
            pass


def test_devices_and_threads_per_slot(monkeypatch) -> None:
    assert pool.job_devices("cpu", 3) == ["cpu"] * 3
    assert pool.job_devices("cuda:1", 2) == ["cuda:1"] * 2
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert pool.job_devices("cuda", 3) == ["cuda:0", "cuda:1", "cuda:0"]
    plan = _plan(Path("."), threads=None)
    monkeypatch.setattr(pool, "cpu_count", lambda: 16)
    assert pool.threads_per_job(plan, 4) == 4
    assert pool.threads_per_job(plan, 32) == 1
    assert pool.threads_per_job(_plan(Path("."), threads=3), 4) == 3


def test_status_line_names_every_running_job() -> None:
    lines: list[str] = []
    board = pool.Board(lines.append, bars=False, status_every=0.0)
    jobs = []
    for i, (name, phase) in enumerate((("dcgan", "training"), ("sngan", "scoring"))):
        job = pool._Job((name, i), proc=None, slot=i, device="cuda:0")  # type: ignore[arg-type]
        job.phase, job.kimg, job.total, job.rate = phase, 12.5, 60.0, 480.0
        jobs.append(job)
    board.tick(jobs)
    assert lines == [
        "running 2: dcgan s0 [cuda:0] 12.5/60 kimg 480 img/s | sngan s1 [cuda:0] scoring"
    ]
    board.tick([])  # nothing running: nothing to say
    assert len(lines) == 1
