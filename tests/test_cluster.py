"""`bench run --executor slurm | submitit-local`: a real one-node Slurm (tests/slurm_cluster.py)
and submitit's local engine run the job array, survive a forced requeue / timeout by resuming
from the checkpoint the stop wrote, and write the rows a local run writes; settings and
command-line mistakes are one clear message."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bench.cluster import ClusterError, ClusterSettings
from bench.runs import RunFolder
from bench.scheduler import EVENTS_FILE, FOLDER, submitted
from bench.status import JobStatus, run_status
from tests import slurm_cluster
from tests.conftest import bench_process, invoke

VOLATILE = {"eval_seconds", "eval_cpu_seconds", "finished_at", "img_per_s", "run_id",
            "train_seconds", "train_cpu_seconds",
            "wall_seconds", "cluster", "resumed_from_step"}  # fmt: skip


def comparable(run: Path) -> dict:
    """Every job's newest row without timing, run id and cluster fields."""
    latest = RunFolder(run).latest()
    return {k: {f: v for f, v in r.items() if f not in VOLATILE} for k, r in latest.items()}


def events(run: Path) -> list[dict]:
    path = run / FOLDER / EVENTS_FILE
    return [json.loads(x) for x in path.read_text().splitlines()] if path.is_file() else []


def poll(
    until: Callable[[list[JobStatus]], bool],
    run: Path,
    timeout_s: float,
    seen: list[list[JobStatus]],
    proc: subprocess.Popen | None = None,
) -> list[JobStatus]:
    """`bench status` of ``run`` every 0.3 s until ``until`` holds; every answer kept. A
    submitting process ``proc`` that ends meanwhile fails the test with its output."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"bench ended early ({proc.returncode}):\n{proc.communicate()[0]}")
        if (run / "config.json").is_file():
            jobs = run_status(run)
            seen.append(jobs)
            if until(jobs):
                return jobs
        time.sleep(0.3)
    last = "\n".join(j.line() for j in seen[-1]) if seen else "no config.json yet"
    raise AssertionError(f"timed out; last status:\n{last}")


def in_training(
    name: str, low: float, high: float
) -> Callable[[list[JobStatus]], JobStatus | None]:
    def pick(jobs: list[JobStatus]) -> JobStatus | None:
        for j in jobs:
            if j.variant == name and j.state == "running" and j.kimg and low <= j.kimg <= high:
                return j
        return None

    return pick


def check_resumed_once(run: Path, key: tuple[str, int], by: str) -> None:
    """The stopped task checkpointed at step s, and its job's row resumed from exactly s:
    nothing before the stop was trained twice."""
    stops = [e for e in events(run) if (e["variant"], e["seed"]) == key and e["event"] == "stopped"]
    assert len(stops) == 1 and stops[0]["by"] == by, events(run)
    row = RunFolder(run).latest()[key]
    assert row["status"] == "ok"
    assert 0 < stops[0]["step"] < row["total_steps"]
    assert row["resumed_from_step"] == stops[0]["step"]


# ------------------------------------------------------------------ settings and mistakes


def test_cluster_settings_from_toml_and_their_errors(tmp_path: Path) -> None:
    good = tmp_path / "cluster.toml"
    good.write_text(
        '[slurm]\npartition = "gpu"\ntime_min = 30\ngpus = 1\nmem_gb = 16\n'
        'params = { account = "abc", qos = "low" }\nsetup = ["module load cuda"]\n'
    )
    s = ClusterSettings.from_toml(good, engine="slurm", cpus=4, time_min=None)
    assert (s.partition, s.time_min, s.gpus, s.cpus, s.mem_gb) == ("gpu", 30, 1, 4, 16)
    assert dict(s.params) == {"account": "abc", "qos": "low"} and s.setup == ("module load cuda",)
    cases = {
        '[slurm]\npartitio = "gpu"\n': "unknown [slurm] key",
        "[slurm]\ntime_min = 0\n": "time_min must be an integer >= 1",
        '[slurm]\ncpus = "two"\n': "cpus must be an integer",
        "[slurm]\nparams = 3\n": "params must be a table",
        "[slurm]\ntime_min = 1\nsignal_delay_s = 90\n": "shorter than the time limit",
        "[slurm\n": "not valid TOML",
    }
    for text, message in cases.items():
        bad = tmp_path / "bad.toml"
        bad.write_text(text)
        with pytest.raises(ClusterError, match=message.replace("[", r"\[")):
            ClusterSettings.from_toml(bad, engine="slurm")


def test_engine_mistakes_are_one_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    base = ("run", "--variants", "dcgan-small", "--profile", "smoke", "--out", tmp_path / "r")
    for extra, message in [
        (("--detach",), "--detach needs --executor slurm or submitit-local"),
        (("--slurm-cpus", "2"), "need --executor slurm or submitit-local"),
        (("--executor", "slurm", "--jobs", "2"), "--jobs is for the local executor"),
    ]:
        result = invoke(*base, *extra)
        assert result.exit_code == 2 and message in result.output, result.output
    monkeypatch.setenv("PATH", str(tmp_path))  # no sbatch here
    result = invoke(*base, "--executor", "slurm", "--data-dir", tmp_path)
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert not (tmp_path / "r" / "results.jsonl").exists()


# ------------------------------------------------------------------ submitit-local


@pytest.fixture
def local_tasks() -> Iterator[list[Path]]:
    """Run folders whose submitit-local controllers must not outlive the test."""
    runs: list[Path] = []
    yield runs
    for run in runs:
        for rec in submitted(RunFolder(run)).values():
            for kill in (os.killpg, os.kill):  # the controller's group, else itself
                with contextlib.suppress(ProcessLookupError, PermissionError, ValueError):
                    kill(int(rec["job_id"]), signal.SIGKILL)


def test_submitit_local_timeout_requeues_and_resumes_exactly(
    synthetic_dir: Path, tmp_path: Path, local_tasks: list[Path]
) -> None:
    """submitit's local engine: a task gets the timeout signal mid-training, checkpoints,
    is requeued by submitit and resumes from that checkpoint; rows equal a local run's."""
    run = tmp_path / "local"
    local_tasks.append(run)
    jobs = ("--variants", "dcgan-small,cgan-mlp-2class", "--profile", "smoke", "--kimg", "3",
            "--data-dir", synthetic_dir, "--no-progress")  # fmt: skip
    sub = invoke("run", *jobs, "--out", run, "--executor", "submitit-local", "--slurm-cpus", "1",
                 "--detach")  # fmt: skip
    assert sub.exit_code == 0, sub.output
    assert "submitted 2 job(s) to submitit-local" in sub.output and "detached" in sub.output
    seen: list[list[JobStatus]] = []
    pick = in_training("dcgan-small", 0.6, 2.2)
    target = pick(poll(lambda js: pick(js) is not None, run, 120, seen))
    assert target is not None
    pid = int((RunFolder(run).job_dir("dcgan-small", 0) / ".lock").read_text())
    os.kill(pid, signal.SIGUSR2)  # what submitit's controller sends at the time limit
    done = poll(lambda js: all(j.state == "done" for j in js), run, 240, seen)
    assert all("submitit-local job" in j.detail for j in done)
    check_resumed_once(run, ("dcgan-small", 0), by="timeout")
    again = invoke("run", *jobs, "--out", run, "--executor", "submitit-local")
    assert again.exit_code == 0 and again.output.count("finished earlier, skipped") == 2

    ref = tmp_path / "ref"
    assert invoke("run", *jobs, "--out", ref, "--threads", "1").exit_code == 0
    assert comparable(run) == comparable(ref)


# ------------------------------------------------------------------ a real Slurm


@pytest.fixture
def slurm(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    try:
        cluster = slurm_cluster.start(tmp_path_factory.mktemp("slurm"))
    except slurm_cluster.Unavailable as exc:
        pytest.skip(f"no local Slurm: {exc}")
    monkeypatch.setenv("SLURM_CONF", cluster.env["SLURM_CONF"])
    yield cluster
    cluster.stop()


@pytest.mark.integration
def test_slurm_array_survives_a_requeue_and_equals_a_local_run(
    slurm: slurm_cluster.LocalSlurm, real_dir: Path, tmp_path: Path
) -> None:
    """2 variants x 2 seeds as a Slurm job array on real data; one running task is requeued
    with `scontrol requeue`, checkpoints on Slurm's SIGTERM and resumes from there; every
    job ends ok with the rows of a local run, and `bench status` follows it all."""
    run = tmp_path / "slurm"
    jobs = ("--variants", "dcgan-small,cgan-mlp", "--seeds", "2", "--profile", "smoke",
            "--kimg", "4", "--data-dir", real_dir, "--no-progress")  # fmt: skip
    proc = bench_process("run", *map(str, jobs), "--out", str(run), "--executor", "slurm",
                         "--slurm-cpus", "1", "--slurm-time", "20")  # fmt: skip
    try:
        seen: list[list[JobStatus]] = []
        pick = in_training("dcgan-small", 1.0, 3.0)
        target = pick(poll(lambda js: pick(js) is not None, run, 240, seen, proc))
        assert target is not None and "slurm job" in target.detail
        key = (target.variant, target.seed)
        job_id = submitted(RunFolder(run))[key]["job_id"]
        slurm.run("scontrol", "requeue", job_id)
        queued = poll(lambda js: any((j.variant, j.seed) == key and j.state == "pending"
                                     for j in js), run, 60, seen)  # fmt: skip
        assert any(f"slurm job {job_id}" in j.detail for j in queued), [j.line() for j in queued]
        # Slurm holds a requeued job back for two minutes (reason BeginTime); once it is
        # back in the queue, let it go at once.
        t0 = time.monotonic()
        while slurm.run("squeue", "-h", "-j", job_id, "-o", "%T|%r").strip() != "PENDING|BeginTime":
            assert time.monotonic() - t0 < 60, slurm.run(
                "squeue", "-h", "-j", job_id, "-o", "%T|%r"
            )
            time.sleep(0.2)
        slurm.run("scontrol", "update", f"JobId={job_id}", "StartTime=now")
        out, _ = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, out + slurm.logs()
    assert "submitted 4 job(s) to slurm" in out and "4 ok, 0 not ok" in out, out
    final = run_status(run)
    seen.append(final)
    assert [j.state for j in final] == ["done"] * 4
    assert all("slurm job" in j.detail for j in final)
    check_resumed_once(run, key, by="scheduler")
    states = {j.state for snapshot in seen for j in snapshot}
    assert {"running", "pending", "done"} <= states and not states - {"running", "pending", "done"}

    ref = tmp_path / "ref"
    assert invoke("run", *jobs, "--out", ref, "--threads", "1").exit_code == 0
    assert comparable(run) == comparable(ref)


# ------------------------------------------------------------------ rows and states


def test_a_task_gone_without_a_row_gets_a_failed_row(synthetic_dir: Path, tmp_path: Path) -> None:
    """The waiting submitter's view: a submitted task whose process ended without writing a
    row (killed, out of memory) becomes a `failed` row naming its log; a rerun resumes it."""
    from bench.engines.submitit import wait_for
    from bench.executor import prepare_run
    from bench.fsutil import append_line
    from bench.jobs import RunPlan
    from bench.profiles import get_profile
    from bench.scheduler import JOBS_FILE

    plan = RunPlan(get_profile("smoke"), ("dcgan-small",), (0,), 0.256,
                   data_dir=str(synthetic_dir), progress=False)  # fmt: skip
    run = RunFolder(tmp_path / "r")
    prepare_run(plan, run, ["test"])
    dead = subprocess.Popen(["true"])
    dead.wait()  # a real process id that has ended
    rec = {"variant": "dcgan-small", "seed": 0, "engine": "submitit-local",
           "job_id": str(dead.pid), "log": "cluster/x/x_0_log.err"}  # fmt: skip
    (run.path / FOLDER).mkdir()
    append_line(run.path / FOLDER / JOBS_FILE, json.dumps(rec))
    lines: list[str] = []
    rows = wait_for(plan, run, lines.append, poll_s=0.1)
    assert [r["status"] for r in rows] == ["failed"]
    assert rows[0]["paths"]["error_log"] == "cluster/x/x_0_log.err"
    assert f"submitit-local job {dead.pid} ended without a result" in rows[0]["error"]
    assert RunFolder(run.path).latest()[("dcgan-small", 0)]["status"] == "failed"


def test_status_follows_the_scheduler_where_rows_are_older() -> None:
    from bench.status import _with_scheduler

    base = JobStatus("dcgan", 0, "pending", 1.5, 4.0, "resumes from its checkpoint")
    queued = _with_scheduler(base, ("slurm", "7_1", "PENDING"), None)
    assert (queued.state, queued.detail) == ("pending", "slurm job 7_1 pending")
    running = _with_scheduler(base, ("slurm", "7_1", "RUNNING"), None)
    assert running.state == "running"
    lost = _with_scheduler(base, ("slurm", "7_1", "OUT_OF_MEMORY"), None)
    assert lost.state == "failed" and "out_of_memory without a result" in lost.detail
    old_row = {"status": "ok", "cluster": {"job_id": "3_0"}}
    requeued = _with_scheduler(JobStatus("dcgan", 0, "done", 4, 4), ("slurm", "7_1", "PENDING"),
                               old_row)  # fmt: skip
    assert requeued.state == "pending"  # a newer submission than the row
    own_row = {"status": "ok", "cluster": {"job_id": "7_1"}}
    done = _with_scheduler(JobStatus("dcgan", 0, "done", 4, 4), ("slurm", "7_1", "COMPLETED"),
                           own_row)  # fmt: skip
    assert (done.state, done.detail) == ("done", "slurm job 7_1 completed")
