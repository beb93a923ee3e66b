"""What the schedulers say about a run's submitted jobs, without importing torch, so that
``bench status`` stays instant: the submission records in ``RUN/cluster/jobs.jsonl`` and the
live state of each job (Slurm's ``squeue``, or a submitit-local controller's process)."""

from __future__ import annotations

import json
import subprocess
from typing import Any

from bench.errors import RunFolderError
from bench.runs import JobKey, RunFolder
from bench.signals import process_start
from bench.validate import shape_problem

FOLDER = "cluster"  # RUN/cluster: submitit's pickles and logs, and JOBS_FILE
JOBS_FILE = "jobs.jsonl"  # one line per submitted job: variant, seed, engine, job_id, log
EVENTS_FILE = "events.jsonl"  # one line per task stopped by a signal: by, step, job_id, at
# Scheduler states of a task that may still write its row (squeue's long names).
ACTIVE = frozenset({
    "PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "REQUEUED", "REQUEUE_HOLD",
    "REQUEUE_FED", "RESIZING", "SUSPENDED", "SIGNALING", "STAGE_OUT", "STOPPED", "PREEMPTED",
})  # fmt: skip
# States of a task that ended without success; its job has no row unless the task wrote one.
ENDED_BADLY = frozenset({
    "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "BOOT_FAIL", "DEADLINE",
})  # fmt: skip
GONE = "GONE"  # no longer known to the scheduler: ended (its final state aged out)


def submitted(run: RunFolder) -> dict[JobKey, dict[str, Any]]:
    """The newest submission record of each job of the run (empty without any).

    Raises:
        RunFolderError: a complete line that is not a submission record (a torn last line,
            the tail of a killed submitter, is left out).
    """
    path = run.path / FOLDER / JOBS_FILE
    out: dict[JobKey, dict[str, Any]] = {}
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return out
    lines = text.split("\n")
    lines = lines[:-1]  # after the last newline: '' or the torn tail of a killed submitter
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            rec = None
        problem = _record_problem(rec)
        if problem:
            raise RunFolderError(f"{path}:{i}: not a submission record of fmgan-bench "
                                 f"({problem}); restore the line or delete it")  # fmt: skip
        out[(rec["variant"], rec["seed"])] = rec
    return out


def _record_problem(rec: Any) -> str | None:
    """What makes ``rec`` unusable as a line of jobs.jsonl, or None."""
    return shape_problem(rec, (("variant", str), ("seed", int), ("engine", str), ("job_id", str)))


def scheduler_states(engine: str, job_ids: list[str]) -> dict[str, str]:
    """State of each job id as the scheduler sees it now: a Slurm state name, ``RUNNING``
    for a live submitit-local controller, or :data:`GONE`. Empty when the scheduler cannot
    be asked (no squeue on this machine, or it failed)."""
    if not job_ids:
        return {}
    if engine == "submitit-local":
        return {j: "RUNNING" if _alive(j) else GONE for j in job_ids}
    arrays = sorted({j.split("_")[0] for j in job_ids})
    try:
        out = subprocess.run(
            ["squeue", "-h", "-r", "-t", "all", "-o", "%i|%T", "-j", ",".join(arrays)],
            capture_output=True, text=True, timeout=60, check=True,
        ).stdout  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return {}
    states = dict(line.split("|", 1) for line in out.splitlines() if "|" in line)
    return {j: states.get(j, GONE) for j in job_ids}


def states_of(records: list[dict[str, Any]]) -> dict[str, str]:
    """:func:`scheduler_states` of submission records, each asked of its own engine."""
    out: dict[str, str] = {}
    for engine in {r["engine"] for r in records}:
        out.update(
            scheduler_states(engine, [r["job_id"] for r in records if r["engine"] == engine])
        )
    return out


def _alive(pid: str) -> bool:
    """Whether a submitit-local controller still runs. One this process started is polled
    through submitit's handle (which reaps it); another is looked up in /proc, where a
    zombie counts as ended."""
    try:
        from submitit.local.local import _PROCESSES

        proc = _PROCESSES.get(pid)
        if proc is not None:
            return proc.poll() is None
        return process_start(int(pid)) is not None
    except (ImportError, ValueError):
        return False


def job_ids_for_status(run: RunFolder) -> dict[JobKey, tuple[str, str, str]]:
    """(engine, job id, scheduler state or "") of each submitted job, for ``bench status``."""
    recs = submitted(run)
    states = states_of(list(recs.values()))
    return {k: (r["engine"], r["job_id"], states.get(r["job_id"], "")) for k, r in recs.items()}
