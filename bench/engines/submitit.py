"""``bench run --executor slurm | submitit-local``: the run's jobs as one submitit job array.

Every unfinished (variant, seed) job becomes one task of a job array (submitit's
``map_array``): on a Slurm cluster (``slurm``), or as local processes under submitit's own
controller (``submitit-local``, the same code path without a cluster). Each task runs
:func:`bench.jobs.run_job` under the job's lock and appends its row to the shared run folder,
exactly as a ``--jobs`` worker does, so rows, layout and resume are the same.

Time limits and preemption: Slurm sends the timeout signal (USR2, ``signal_delay_s`` before
the limit); the loop finishes its step, checkpoints, and submitit requeues the task, which
resumes from that checkpoint bit-exactly. A requeue or preemption by the scheduler (SIGTERM,
then a kill after Slurm's KillWait) is the same stop, and Slurm itself restarts the task. A
task that ends without a row (killed, out of memory) gets a ``failed`` row naming its log,
written by the waiting submitter, so a rerun resumes it.

``RUN/cluster/`` holds submitit's pickles and logs (one folder per task) and ``jobs.jsonl``,
one line per submitted task (variant, seed, engine, job id), which ``bench status`` reads and
a rerun consults so that a task still queued or running is not submitted twice.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import shutil
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from bench.cluster import ClusterError, ClusterSettings, check_engine
from bench.engines.common import STATUS_EVERY_S, Batch, Engine, warm_caches
from bench.fsutil import append_line
from bench.harness import Interrupted
from bench.jobs import RunPlan, format_row, job_finished, job_row, make_scorer, record, run_job
from bench.runs import CONFIG, JobKey, RunFolder
from bench.scheduler import ACTIVE, EVENTS_FILE, FOLDER, GONE, JOBS_FILE, states_of, submitted
from bench.signals import also_stop_on
from metrics.common import write_atomic


class ClusterJob:
    """One task of the array: picklable, called as ``job(variant, seed)`` on the node.

    ``checkpoint`` is submitit's requeue hook: the resubmitted call is the same call, and
    :func:`run_job` resumes from the checkpoint the stopped loop left.
    """

    def __init__(self, plan: RunPlan, run_path: str, threads: int, engine: str) -> None:
        self.plan, self.run_path, self.threads, self.engine = plan, run_path, threads, engine

    def __call__(self, variant: str, seed: int) -> dict[str, Any]:
        """Train, score and record one job; on the timeout signal, checkpoint and requeue."""
        import submitit

        torch.set_num_threads(self.threads)
        timeout_signal = submitit.JobEnvironment._usr_sig()
        requeue = signal.getsignal(timeout_signal)  # submitit's: checkpoint(), requeue, exit
        run = RunFolder(self.run_path)
        try:
            with also_stop_on(timeout_signal) as received, run.job_locked(variant, seed):
                done = run.latest().get((variant, seed)) if run.results_path.is_file() else None
                if done is not None and job_finished(done, self.plan.kimg):
                    # A task requeued after writing its row (a signal during scoring).
                    self._event(run, variant, seed, "skipped", reason="already finished")
                    return done
                row = run_job(self.plan, variant, seed, run.job_dir(variant, seed), None,
                              make_scorer(self.plan))  # fmt: skip
                row["cluster"] = {"engine": self.engine,
                                  "job_id": submitit.JobEnvironment().job_id}  # fmt: skip
                record(run, row)
            return row
        except Interrupted as exc:
            by = "timeout" if timeout_signal in received else "scheduler"
            self._event(run, variant, seed, "stopped", by=by, step=exc.step)
            if by == "timeout" and callable(requeue):
                requeue(timeout_signal, None)  # does not return: the task is requeued
            raise  # SIGTERM: the scheduler requeues (preemption, scontrol requeue) or cancels

    def _event(self, run: RunFolder, variant: str, seed: int, event: str, **info: Any) -> None:
        """One line in RUN/cluster/events.jsonl: what became of a task, and when."""
        import submitit

        line = {"variant": variant, "seed": seed, "event": event, "engine": self.engine,
                "job_id": submitit.JobEnvironment().job_id,
                "at": dt.datetime.now(dt.UTC).isoformat(), **info}  # fmt: skip
        append_line(run.path / FOLDER / EVENTS_FILE, json.dumps(line, sort_keys=True))

    def checkpoint(self, variant: str, seed: int) -> Any:
        """The call to run again after a timeout: the same job, resumed from its files."""
        import submitit

        return submitit.helpers.DelayedSubmission(self, variant, seed)


class SubmititEngine(Engine):
    """The batch as one submitit job array (``options.cluster`` says where and how)."""

    poll_s: float = 5.0  # how often the waiting submitter reads the rows and the scheduler

    def guard(self, run: RunFolder) -> contextlib.AbstractContextManager[Any]:
        """A refused submission leaves the folder as it was (:func:`_undone_if_refused`)."""
        return _undone_if_refused(run)

    def run(self, batch: Batch) -> list[dict[str, Any]]:
        """Submit the batch as one job array and, unless detached, wait for every task's
        row; return the rows written meanwhile (none when detached). A job whose previous
        task is still queued or running is not submitted again.

        Raises:
            ClusterError: no submitit or sbatch, or the scheduler refused the array.
        """
        settings, detach = self.options.cluster, self.options.detach
        if settings is None:
            raise ClusterError("the submitit engine needs cluster settings")
        if not batch.todo:
            return []
        plan, run, echo = batch.plan, batch.run, batch.echo
        check_engine(settings.engine)
        before = submitted(run)
        live = states_of([before[k] for k in batch.todo if k in before])
        queued = [k for k in batch.todo if k in before and live.get(before[k]["job_id"]) in ACTIVE]
        for k in queued:
            rec = before[k]
            echo(f"{k[0]} seed {k[1]}: already {live[rec['job_id']].lower()} as "
                 f"{rec['engine']} job {rec['job_id']}, not submitted again")  # fmt: skip
        todo = [k for k in batch.todo if k not in queued]
        if not todo:
            waited = {k: before[k] for k in queued}
            return [] if detach else _wait(plan, run, waited, echo, self.poll_s)
        warm_caches(plan, batch.scorer, todo)  # here once, not in every task
        records = _submit(plan, run, todo, settings, echo)
        if detach:
            echo(f"detached: watch with `bench status {run.path}`; rows land in {run.results_path}")
            return []
        for k in queued:
            records[k] = before[k]
        return _wait(plan, run, records, echo, self.poll_s)

    def wait(
        self, plan: RunPlan, run: RunFolder, echo: Callable[[str], None]
    ) -> list[dict[str, Any]]:
        """Wait for every submitted, unfinished job of ``plan`` in ``run``; their rows."""
        return wait_for(plan, run, echo, self.poll_s)


def _submit(
    plan: RunPlan,
    run: RunFolder,
    todo: list[JobKey],
    settings: ClusterSettings,
    echo: Callable[[str], None],
) -> dict[JobKey, dict[str, Any]]:
    """Submit ``todo`` as one job array; record and return each task's submission."""
    threads = plan.threads if plan.threads is not None else settings.cpus
    task_plan = replace(plan, progress=False, threads=threads)
    folder = run.path / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    executor = settings.executor(folder / "%j", f"bench-{run.run_id}")
    fn = ClusterJob(task_plan, str(run.path.resolve()), threads, settings.engine)
    try:
        handles = executor.map_array(fn, [k[0] for k in todo], [k[1] for k in todo])
    except Exception as exc:  # sbatch refused (bad partition, account, limits)
        raise ClusterError(f"{settings.engine} refused the job array: {exc}") from None
    at = dt.datetime.now(dt.UTC).isoformat()
    records = {}
    for key, handle in zip(todo, handles, strict=True):
        rec = {"variant": key[0], "seed": key[1], "engine": settings.engine,
               "job_id": str(handle.job_id), "submitted_at": at,
               "log": str(Path(handle.paths.stderr).relative_to(run.path.resolve()))}  # fmt: skip
        append_line(folder / JOBS_FILE, json.dumps(rec, sort_keys=True))
        records[key] = rec
    first = records[todo[0]]["job_id"].split("_")[0]
    echo(f"submitted {len(todo)} job(s) to {settings.engine} as job {first} "
         f"({threads} CPU thread(s) per job); logs in {folder}")  # fmt: skip
    return records


@contextlib.contextmanager
def _undone_if_refused(run: RunFolder) -> Iterator[None]:
    """A submission the scheduler refuses (no controller, a bad partition) leaves the folder
    as it found it: a folder this command made is removed, an existing one gets its
    config.json back and loses the submission files made for the refused array."""
    existed = run.path.is_dir()
    config = run.path / CONFIG
    before = config.read_bytes() if config.is_file() else None
    cluster_dir = run.path / FOLDER
    had = set(cluster_dir.iterdir()) if cluster_dir.is_dir() else set()
    try:
        yield
    except ClusterError:
        if not existed:
            shutil.rmtree(run.path, ignore_errors=True)
        else:
            if before is not None:
                write_atomic(before, config)
            elif config.is_file():
                config.unlink()
            if cluster_dir.is_dir():
                for new in set(cluster_dir.iterdir()) - had:
                    shutil.rmtree(new) if new.is_dir() else new.unlink(missing_ok=True)
                if not had:
                    cluster_dir.rmdir()
        raise


def _wait(
    plan: RunPlan,
    run: RunFolder,
    records: dict[JobKey, dict[str, Any]],
    echo: Callable[[str], None],
    poll_s: float,
) -> list[dict[str, Any]]:
    """Poll the run's rows and the scheduler until every task has a new row or is gone; a
    task gone without one gets a ``failed`` row naming its log."""
    counts: dict[JobKey, int] = {}
    for row in run.results() if run.results_path.is_file() else []:
        key = (row["variant"], int(row["seed"]))
        counts[key] = counts.get(key, 0) + 1
    waiting = dict(records)
    written: list[dict[str, Any]] = []
    shown, said = "", time.monotonic()
    try:
        while waiting:
            states = states_of(list(waiting.values()))
            new = _new_rows(run, counts)
            ended = [
                k
                for k, r in waiting.items()
                if k not in new and states.get(r["job_id"], "RUNNING") not in ACTIVE
            ]
            if ended:  # its row may have landed between the two reads
                new = _new_rows(run, counts)
            for key in list(waiting):
                if key in new:
                    row = new[key]
                elif key in ended:
                    latest = run.latest().get(key)
                    if latest is not None and job_finished(latest, plan.kimg):
                        row = latest  # requeued after its row landed: nothing new to write
                    else:
                        row = _lost(plan, run, waiting[key], states[waiting[key]["job_id"]])
                else:
                    continue
                del waiting[key]
                written.append(row)
                echo(format_row(row))
            changed, line = _summary(run, waiting, states, plan.kimg)
            if waiting and (changed != shown or time.monotonic() - said >= STATUS_EVERY_S):
                echo(line)  # when a state changes, and every minute with the kimg so far
                shown, said = changed, time.monotonic()
            if waiting:
                time.sleep(poll_s)
    except KeyboardInterrupt:
        raise Interrupted(
            "stopped waiting; the submitted jobs go on: `bench status "
            f"{run.path}` follows them and rerunning the command waits for them again"
        ) from None
    return written


def _new_rows(run: RunFolder, counts: dict[JobKey, int]) -> dict[JobKey, dict[str, Any]]:
    """The newest row of each job that has more rows now than ``counts`` (at submission)."""
    seen: dict[JobKey, int] = {}
    out: dict[JobKey, dict[str, Any]] = {}
    for row in run.results() if run.results_path.is_file() else []:
        key = (row["variant"], int(row["seed"]))
        seen[key] = seen.get(key, 0) + 1
        if seen[key] > counts.get(key, 0):
            out[key] = row
    return out


def _summary(
    run: RunFolder, waiting: dict[JobKey, dict[str, Any]], states: dict[str, str], budget: float
) -> tuple[str, str]:
    """(the states of the waiting jobs, the same with each running job's kimg so far)."""
    from bench.status import logged_kimg

    by_state: dict[str, list[str]] = {}
    progress: dict[str, list[str]] = {}
    for (variant, seed), rec in waiting.items():
        state = states.get(rec["job_id"], "UNKNOWN").lower()
        name = f"{variant}/s{seed}"
        by_state.setdefault(state, []).append(name)
        kimg = (
            logged_kimg(run.job_dir(variant, seed) / "losses.csv") if state == "running" else None
        )
        progress.setdefault(state, []).append(
            name if kimg is None else f"{name} {kimg:g}/{budget:g} kimg"
        )

    def line(groups: dict[str, list[str]]) -> str:
        return "waiting: " + "; ".join(f"{s} {', '.join(v)}" for s, v in sorted(groups.items()))

    return line(by_state), line(progress)


def _lost(plan: RunPlan, run: RunFolder, rec: dict[str, Any], state: str) -> dict[str, Any]:
    """The ``failed`` row of a task that ended without writing one; a rerun resumes it."""
    variant, seed = rec["variant"], int(rec["seed"])
    row = job_row(plan, variant, seed)
    how = "ended" if state == GONE else f"ended {state}"
    row.update({
        "status": "failed",
        "error": f"{rec['engine']} job {rec['job_id']} {how} without a result; see its log",
        "step": None,
        "kimg": 0.0,
        "paths": {"error_log": rec.get("log", "")},
        "cluster": {"engine": rec["engine"], "job_id": rec["job_id"]},
        "finished_at": dt.datetime.now(dt.UTC).isoformat(),
    })  # fmt: skip
    record(run, row)
    return row


def wait_for(
    plan: RunPlan, run: RunFolder, echo: Callable[[str], None], poll_s: float = 5.0
) -> list[dict[str, Any]]:
    """Wait for every submitted, unfinished job of ``plan`` in ``run`` (as
    :class:`SubmititEngine` does after submitting); return their rows."""
    latest = run.latest() if run.results_path.is_file() else {}
    wanted = set(plan.jobs())
    records = {k: r for k, r in submitted(run).items()
               if k in wanted and not job_finished(latest.get(k, {}), plan.kimg)}  # fmt: skip
    return _wait(plan, run, records, echo, poll_s) if records else []
