"""``bench status``: where every job of a run folder stands, read from the folder alone.

A job is ``done`` (its newest row is ok), ``failed`` or ``diverged`` (its newest row says
so), ``running`` (a process holds its job lock now, or the scheduler runs its task), or
``pending`` (not started, queued, or stopped with a checkpoint to resume from). A job
submitted to Slurm or submitit-local names its job id and the scheduler's state
(:mod:`bench.scheduler`); a lock held on another node is invisible here, the scheduler's
state is not. Progress comes from the job's loss log, which the loop
appends every step, and its pace from the ``progress.json`` written with each checkpoint, so
reading them costs nothing and never touches a lock: ``bench status`` may run beside the
jobs it describes without disturbing them.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass, replace
from pathlib import Path

from bench.errors import RunFolderError
from bench.runs import FINISHED, LOCK, PROGRESS, RunFolder
from bench.scheduler import ACTIVE, ENDED_BADLY, job_ids_for_status
from reports.rows import job_cpu_seconds


@dataclass(frozen=True)
class JobStatus:
    """One job's state."""

    variant: str
    seed: int
    state: str  # pending | running | done | failed | diverged | <another row status>
    kimg: float | None  # images shown so far (thousands), when known
    budget: float | None  # the run's budget in kimg
    detail: str = ""
    # training CPU seconds per kimg at the job's last checkpoint (its progress.json), for an
    # unfinished job that has one: what the CPU account estimates a new variant from
    cpu_s_per_kimg: float | None = None

    def line(self) -> str:
        """One line: variant, seed, state, progress, detail."""
        done = "-" if self.kimg is None else f"{self.kimg:g}"
        budget = "?" if self.budget is None else f"{self.budget:g}"
        text = f"{self.variant:<20} seed {self.seed:<3} {self.state:<9} {done}/{budget} kimg"
        return f"{text}  {self.detail}" if self.detail else text


def run_status(path: Path) -> list[JobStatus]:
    """Every (variant, seed) job the run's config.json names, in its order.

    Raises:
        RunFolderError: not a run folder (no config.json) or an unreadable one.
    """
    run = RunFolder(path)
    config = run.read_config()
    if config is None:
        raise RunFolderError(f"{path}: not a run folder (no config.json)")
    run_settings = config.get("run") or {}
    budget = run_settings.get("kimg") or (config.get("profile") or {}).get("kimg")
    latest = run.latest() if run.results_path.is_file() else {}
    held = _held_locks()
    queued = job_ids_for_status(run)
    out = []
    for variant in config.get("variants") or {}:
        for seed in config.get("seeds") or []:
            row = latest.get((variant, int(seed)))
            job = _job(run, variant, int(seed), row, held, budget)
            out.append(_with_scheduler(job, queued.get((variant, int(seed))), row))
    return out


@dataclass(frozen=True)
class CpuHours:
    """What a run's jobs cost in process CPU time (rows' ``train_cpu_seconds`` plus
    ``eval_cpu_seconds``, the raw G's scoring included; the curve points tracked between
    training steps are not counted), and what its unfinished jobs will cost.

    ``spent``: the finished (ok) rows that record both; ``left``: for each unfinished job,
    its remaining kimg at its variant's mean CPU time per kimg, plus its variant's mean
    scoring time. A variant without a finished job in this run is estimated from the
    checkpointed pace of a partly trained job of it (``partial`` counts those jobs), scored
    at the mean scoring time of the run's finished jobs; ``unknown``: unfinished jobs of a
    variant that has neither; ``unmeasured``: finished rows without CPU time (written before
    rows recorded it, or resumed from such a checkpoint). CPU time, not wall time: a job
    that shared its cores (a niced background run) costs the same. Hours."""

    spent: float
    spent_jobs: int
    left: float
    left_jobs: int
    unknown: int
    unmeasured: int = 0
    partial: int = 0

    def line(self) -> str:
        """The summary line ``bench status`` prints under the job lines."""
        text = f"CPU time: {self.spent:.1f} h spent by {self.spent_jobs} finished job(s)"
        if self.unmeasured:
            text += f" ({self.unmeasured} more finished without a CPU time on record)"
        if self.left_jobs:
            text += f"; about {self.left:.1f} h left for {self.left_jobs} job(s)"
            if self.partial:
                text += f" ({self.partial} at the pace of a partly trained job)"
        if self.unknown:
            text += f"; {self.unknown} job(s) not estimated (no finished job of their variant)"
        return text


def cpu_hours(path: Path, jobs: list[JobStatus]) -> CpuHours:
    """The CPU-time account of run folder ``path`` whose jobs stand as ``jobs``
    (:func:`run_status`)."""
    run = RunFolder(path)
    latest = run.latest() if run.results_path.is_file() else {}
    train_rate: dict[str, list[float]] = {}
    score: dict[str, list[float]] = {}
    spent, spent_jobs, unmeasured = 0.0, 0, 0
    for (variant, _), row in latest.items():
        if row.get("status") != "ok":
            continue
        seconds = job_cpu_seconds(row)
        if seconds is None:
            unmeasured += 1
            continue
        train_s, eval_s = seconds
        spent, spent_jobs = spent + float(train_s) + eval_s, spent_jobs + 1
        if float(row.get("kimg") or 0) > 0:
            train_rate.setdefault(variant, []).append(float(train_s) / float(row["kimg"]))
            score.setdefault(variant, []).append(eval_s)
    unfinished = [j for j in jobs if j.state not in ("done", "diverged")]
    partial_rate: dict[str, list[float]] = {}
    for job in unfinished:
        if job.variant not in train_rate and job.cpu_s_per_kimg is not None:
            partial_rate.setdefault(job.variant, []).append(job.cpu_s_per_kimg)
    all_scores = [s for scores in score.values() for s in scores]
    left, left_jobs, unknown, partial = 0.0, 0, 0, 0
    for job in unfinished:
        rates = train_rate.get(job.variant) or partial_rate.get(job.variant)
        scores = score.get(job.variant) or all_scores
        if not rates or not scores or job.budget is None:
            unknown += 1
            continue
        remaining = max(0.0, float(job.budget) - float(job.kimg or 0.0))
        left += remaining * sum(rates) / len(rates) + sum(scores) / len(scores)
        left_jobs += 1
        partial += job.variant not in train_rate
    return CpuHours(spent / 3600, spent_jobs, left / 3600, left_jobs, unknown, unmeasured, partial)


def job_progress(folder: Path) -> dict | None:
    """A job's ``progress.json`` (step, kimg, train_seconds, train_cpu_seconds at its last
    checkpoint), or None where there is none or it cannot be read."""
    try:
        data = json.loads((folder / PROGRESS).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _per_kimg(progress: dict | None, key: str) -> float | None:
    """``progress[key]`` (seconds) per kimg trained, or None where either is missing."""
    try:
        seconds, kimg = float((progress or {})[key]), float((progress or {})["kimg"])
    except (KeyError, TypeError, ValueError):
        return None
    return seconds / kimg if kimg > 0 and seconds > 0 else None


def _with_scheduler(
    job: JobStatus, queued: tuple[str, str, str] | None, row: dict | None
) -> JobStatus:
    """Add the job's cluster task (engine, id, state) to its line; an active task decides
    the state of a job whose newest row is older than the task."""
    if queued is None:
        return job
    engine, job_id, state = queued
    where = f"{engine} job {job_id}" + (f" {state.lower()}" if state else "")
    row_is_older = row is None or (row.get("cluster") or {}).get("job_id") != job_id
    if state in ACTIVE and row_is_older and job.state != "running":
        new_state = "running" if state == "RUNNING" else "pending"
        return replace(job, state=new_state, detail=where)
    if state in ENDED_BADLY and row_is_older and job.state == "pending":
        # killed or cancelled without a row (a waiting `bench run` writes one); resumable
        return replace(job, state="failed", detail=f"{where} without a result; see "
                       f"RUN/cluster/{job_id}/")  # fmt: skip
    detail = f"{job.detail}; {where}" if job.detail else where
    return replace(job, detail=detail)


def _job(
    run: RunFolder,
    variant: str,
    seed: int,
    row: dict | None,
    held: set[tuple[int, int]] | None,
    budget: float | None,
) -> JobStatus:
    folder = run.job_dir(variant, seed)
    logged = logged_kimg(folder / "losses.csv")
    lock = folder / LOCK
    holder = _holder(lock, held)
    finished = holder is None and row is not None and row.get("status") in FINISHED
    progress = None if finished else job_progress(folder)  # read once, for line and account
    cpu = _per_kimg(progress, "train_cpu_seconds")
    if holder is not None:
        pace = _pace(progress, budget, logged)
        return JobStatus(variant, seed, "running", logged, budget, f"pid {holder}{pace}", cpu)
    if row is not None:
        state = "done" if row.get("status") == "ok" else str(row.get("status"))
        detail = "" if state == "done" else str(row.get("error") or "")[:120]
        return JobStatus(variant, seed, state, row.get("kimg", logged), budget, detail, cpu)
    if (folder / "checkpoint.pt").is_file():
        pace = _pace(progress, budget, logged)
        return JobStatus(
            variant, seed, "pending", logged, budget, f"resumes from its checkpoint{pace}", cpu
        )
    return JobStatus(variant, seed, "pending", None, budget, cpu_s_per_kimg=cpu)


def _pace(progress: dict | None, budget: float | None, kimg: float | None) -> str:
    """Text such as ", 228 img/s, about 1.2 h of training to go": the job's training pace
    at its last checkpoint (images per second of the training steps since that process's
    previous checkpoint; the whole job's where it has none) and the time its remaining kimg
    take at that pace; "" when the job has no progress on record; ", trained" once its last
    step is checkpointed (a running job is scoring then)."""
    with contextlib.suppress(KeyError, TypeError, ValueError):
        if int((progress or {})["step"]) >= int((progress or {})["total_steps"]):
            return ", trained"
    per_kimg = _per_kimg(progress, "train_seconds")
    with contextlib.suppress(KeyError, TypeError, ValueError, ZeroDivisionError):
        per_kimg = 1000 / float((progress or {})["img_per_s"])
    if per_kimg is None or per_kimg <= 0:
        return ""
    text = f", {1000 / per_kimg:.0f} img/s"
    if budget is not None and kimg is not None:
        text += f", about {max(0.0, budget - kimg) * per_kimg / 3600:.1f} h of training to go"
    return text


def logged_kimg(losses: Path) -> float | None:
    """kimg of the loss log's last complete line (the loop appends one per step)."""
    try:
        with open(losses, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 4096))
            lines = fh.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return None
    for line in reversed(lines[1:] if len(lines) > 1 else []):
        parts = line.split(",")
        try:
            return float(parts[1])
        except (IndexError, ValueError):
            continue
    return None


def _held_locks() -> set[tuple[int, int]] | None:
    """(device, inode) of every file with an flock held now, from /proc/locks (Linux); None
    where the kernel does not say."""
    try:
        text = Path("/proc/locks").read_text()
    except OSError:
        return None
    held = set()
    for line in text.splitlines():
        fields = line.split()
        if "FLOCK" not in fields or len(fields) < 6:
            continue
        try:
            major, minor, inode = fields[5].split(":")
            held.add((os.makedev(int(major, 16), int(minor, 16)), int(inode)))
        except ValueError:
            continue
    return held


def _holder(lock: Path, held: set[tuple[int, int]] | None) -> str | None:
    """The pid written in a job lock that a process holds now, else None. Without
    /proc/locks, a live process with the recorded pid counts as the holder."""
    try:
        st = lock.stat()
        pid = lock.read_text().strip()
    except OSError:
        return None
    if held is not None:
        return (pid or "unknown") if (st.st_dev, st.st_ino) in held else None
    try:
        os.kill(int(pid), 0)
    except PermissionError:
        return pid  # alive, another user's
    except (ValueError, ProcessLookupError):
        return None
    return pid
