"""``bench run --jobs N``: up to N (variant, seed) jobs at once, each in its own process.

Why a process per job: a job that crashes hard (a segfault, the kernel's OOM killer) takes
only itself down, and its row says so; each job has its own CPU thread count and its own
CUDA context; memory is returned when the job ends. Small 28x28 GANs leave a GPU mostly
idle, so several jobs share one GPU well, and on a machine with several GPUs the jobs are
spread over them (worker slot i uses ``cuda:(i mod count)``). On the CPU each job gets
``plan.threads`` intra-op threads, by default ``cores // N``, so N jobs do not fight over
the cores.

Each worker runs the same :func:`bench.jobs.run_job` as the local engine and
appends its own row (a locked append), so the rows equal a one-at-a-time run's at the same
threads per job. The parent holds the run folder's lock, starts and watches the workers,
shows every running job, writes a ``failed`` row for a worker that died without one, and on
Ctrl-C or SIGTERM asks every worker to checkpoint and stop (a second Ctrl-C kills them).

Workers start from a fork server where the platform has one: a single server process imports
torch, torch-fidelity and bench once, and every job forks from it, where a spawned worker
would import them again (about 8 s of CPU per job). The server never runs a torch operation,
starts a thread or touches CUDA, so forking it is safe; each worker takes the parent's
current environment and working directory with its job, not the server's.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import multiprocessing as mp
import os
import queue as queue_mod
import signal
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from bench.engines.common import STATUS_EVERY_S, Batch, Engine, warm_caches
from bench.errors import BenchError
from bench.harness import Interrupted
from bench.jobs import RunPlan, format_row, job_row, make_scorer, record, run_job
from bench.runs import JobKey, RunFolder
from bench.signals import process_start, stop_on_signal, terminate_unwinds
from bench.training import Hook, TrainingState

PARENT_POLL_S = 0.5  # how often a worker checks that the bench process that started it lives


def cpu_count() -> int:
    """Cores this process may run on (the affinity mask, as a Slurm or cgroup limit sets it)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def job_devices(device: str, jobs: int) -> list[str]:
    """The device of each of ``jobs`` worker slots: plain ``cuda`` is spread round-robin
    over the visible GPUs; ``cpu`` or a named ``cuda:N`` is the same for every slot."""
    d = torch.device(device)
    if d.type == "cuda" and d.index is None:
        n = max(1, torch.cuda.device_count())
        return [f"cuda:{i % n}" for i in range(jobs)]
    return [device] * jobs


def threads_per_job(plan: RunPlan, jobs: int) -> int:
    """CPU intra-op threads of each worker: the plan's, else an equal share of the cores."""
    return plan.threads if plan.threads is not None else max(1, cpu_count() // jobs)


class _Reporter(Hook):
    """Worker side of the progress display: kimg and img/s at most once a second, and the
    moment training ends and scoring starts."""

    def __init__(self, messages: Any, key: JobKey) -> None:
        self.messages, self.key = messages, key

    def on_start(self, trainer: TrainingState) -> None:
        self.total = trainer.total_steps * trainer.images_per_step / 1000
        self._t, self._k = time.monotonic(), trainer.kimg
        self.messages.put(("progress", self.key, trainer.kimg, self.total, None))

    def after_step(self, trainer: TrainingState) -> None:
        now = time.monotonic()
        if now - self._t >= 1.0:
            rate = (trainer.kimg - self._k) * 1000 / (now - self._t)
            self._t, self._k = now, trainer.kimg
            self.messages.put(("progress", self.key, trainer.kimg, self.total, rate))

    def on_end(self, trainer: TrainingState) -> None:
        if trainer.step == trainer.total_steps:
            self.messages.put(("phase", self.key, "scoring"))


def _context() -> Any:
    """The fork server where the platform has one (see the module docstring), else spawn;
    fork itself would copy the parent's threads and CUDA context."""
    if "forkserver" in mp.get_all_start_methods():
        from multiprocessing import forkserver

        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(["bench.engines.pool"])
        forkserver.ensure_running()  # its imports overlap the parent's cache warming
        return ctx
    return mp.get_context("spawn")


def _watch_parent(pid: int, start: str | None, every_s: float = PARENT_POLL_S) -> None:
    """In a worker: when the ``bench`` process that started it is gone (killed with SIGKILL,
    which it cannot forward), SIGTERM ourselves, so the job checkpoints and the worker ends
    like on Ctrl-C instead of training on as an orphan that holds the job's lock."""

    def watch() -> None:
        while process_start(pid) == start:
            time.sleep(every_s)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="bench-parent-watch", daemon=True).start()


def _worker(
    plan: RunPlan, run_path: str, variant: str, seed: int, threads: int, q: Any,
    env: dict[str, str], cwd: str, parent: tuple[int, str | None],
) -> None:  # fmt: skip
    """One job in a worker process: train, score, append the row, report it."""
    terminate_unwinds()  # a stop while it scores: an "interrupted" message, not a silent end
    _watch_parent(*parent)
    os.setpgrp()  # the terminal's Ctrl-C goes to the parent, which stops workers in order
    os.environ.clear()  # the parent's environment now, not the fork server's at its start
    os.environ.update(env)
    os.chdir(cwd)
    torch.set_num_threads(threads)
    key = (variant, seed)
    try:
        run = RunFolder(run_path)
        with run.job_locked(variant, seed):
            row = run_job(
                plan, variant, seed, run.job_dir(variant, seed), None, make_scorer(plan),
                hooks=[_Reporter(q, key)],
            )  # fmt: skip
            record(run, row)
        q.put(("row", key, row))
    except BenchError as exc:
        q.put(("error", key, str(exc)))
        sys.exit(exc.exit_code)
    except (Interrupted, KeyboardInterrupt) as exc:
        q.put(("interrupted", key, str(exc)))
        sys.exit(130)
    except BaseException:
        q.put(("crash", key, traceback.format_exc()))
        raise


@dataclass
class _Job:
    key: JobKey
    proc: BaseProcess
    slot: int
    device: str
    kimg: float = 0.0
    total: float = 0.0
    rate: float | None = None
    phase: str = "starting"
    ended: str | None = None  # "row", "error", "interrupted" once the worker said so
    crash: str = ""
    started: float = field(default_factory=time.monotonic)

    def status(self) -> str:
        """One short description: where it runs and how far it is."""
        name = f"{self.key[0]} s{self.key[1]} [{self.device}]"
        if self.phase != "training":
            return f"{name} {self.phase}"
        rate = f" {self.rate:.0f} img/s" if self.rate else ""
        return f"{name} {self.kimg:.1f}/{self.total:g} kimg{rate}"


class Board:
    """The parent's display of every running job: one progress bar per worker slot on a
    terminal, else a status line naming every running job every ``status_every`` seconds.
    Finished jobs get their usual one-line summary either way."""

    def __init__(
        self, echo: Callable[[str], None], bars: bool, status_every: float = STATUS_EVERY_S
    ) -> None:
        self.echo, self.bars, self.status_every = echo, bars, status_every
        self._bars: dict[int, Any] = {}
        self._last = time.monotonic()

    def say(self, line: str) -> None:
        """Print a line without breaking the bars."""
        if self.bars:
            tqdm.write(line, file=sys.stdout)
        else:
            self.echo(line)

    def update(self, job: _Job) -> None:
        """Redraw a job's bar (terminal only)."""
        if not self.bars:
            return
        bar = self._bars.get(job.slot)
        if bar is None or bar.desc != f"{job.key[0]} s{job.key[1]}":
            if bar is not None:
                bar.close()
            bar = tqdm(
                total=job.total or 1.0, position=job.slot, leave=False, dynamic_ncols=True,
                desc=f"{job.key[0]} s{job.key[1]}", unit="kimg",
                bar_format="{desc}: {percentage:3.0f}%|{bar}| {postfix}",
            )  # fmt: skip
            self._bars[job.slot] = bar
        bar.total = job.total or 1.0
        bar.n = job.kimg
        bar.set_postfix_str(job.status(), refresh=True)

    def done(self, job: _Job) -> None:
        """Remove a finished job's bar."""
        bar = self._bars.pop(job.slot, None)
        if bar is not None:
            bar.close()

    def tick(self, running: list[_Job]) -> None:
        """Without bars: every ``status_every`` seconds, one line with every running job."""
        now = time.monotonic()
        if self.bars or not running or now - self._last < self.status_every:
            return
        self._last = now
        self.echo(f"running {len(running)}: " + " | ".join(j.status() for j in running))

    def close(self) -> None:
        """Close every bar."""
        for bar in self._bars.values():
            bar.close()
        self._bars.clear()


class PoolEngine(Engine):
    """Up to ``options.jobs`` jobs at once, each in a worker process (module docstring)."""

    status_every: float = STATUS_EVERY_S

    def run(self, batch: Batch) -> list[dict[str, Any]]:
        """Run the batch in worker processes; return the rows written now.

        Raises:
            BenchError: a worker met a user error (the first one); running jobs finish first.
            Interrupted: Ctrl-C or SIGTERM; every started job checkpointed and can resume.
        """
        plan, jobs = batch.plan, self.options.jobs
        bars = plan.progress if plan.progress is not None else sys.stderr.isatty()
        state = _PoolState(batch, jobs, Board(batch.echo, bars, self.status_every))
        warm_caches(plan, batch.scorer, batch.todo)  # while the fork server imports
        cpu = torch.device(plan.device).type == "cpu"
        where = (f"{state.threads} thread(s) each" if cpu
                 else "devices " + ", ".join(sorted(set(state.slots))))  # fmt: skip
        batch.echo(f"{len(batch.todo)} job(s), up to {jobs} at a time ({where})")
        try:
            with stop_on_signal() as stop:
                while state.pending or state.running:
                    if stop.is_set() and not state.stopping:
                        state.stop()
                    if state.errors:
                        state.pending.clear()  # a user error: start nothing new
                    state.start_free()
                    state.drain(wait=0.5)
                    state.reap()
                    state.board.tick(list(state.running.values()))
                if state.stopping:  # raised inside: the signal was handled, not to be raised again
                    raise Interrupted("every running job saved a checkpoint")
        except KeyboardInterrupt:  # a second Ctrl-C: stop now; the last checkpoints stay
            for job in state.running.values():
                _signal(job.proc, signal.SIGKILL)
                job.proc.join()
            raise
        finally:
            state.board.close()
            state.messages.close()
        if state.errors:
            raise BenchError(state.errors[0])
        return state.written


class _PoolState:
    """The parent's view of a pool at work: jobs waiting, running (by worker slot), rows
    written and user errors reported so far."""

    def __init__(self, batch: Batch, jobs: int, board: Board) -> None:
        self.batch, self.board = batch, board
        self.ctx = _context()
        self.messages = self.ctx.Queue()
        self.slots = job_devices(batch.plan.device, jobs)
        self.threads = threads_per_job(batch.plan, jobs)
        self.worker_plan = replace(batch.plan, progress=False)
        self.pending: deque[JobKey] = deque(batch.todo)
        self.running: dict[JobKey, _Job] = {}
        self.free = list(range(jobs))
        self.written: list[dict[str, Any]] = []
        self.errors: list[str] = []
        self.stopping = False
        self.parent = (os.getpid(), process_start(os.getpid()))

    def stop(self) -> None:
        """Ctrl-C or SIGTERM: start nothing more; every worker checkpoints and stops."""
        self.stopping = True
        self.pending.clear()
        for job in self.running.values():
            _signal(job.proc, signal.SIGTERM)

    def start_free(self) -> None:
        """Start waiting jobs on the free worker slots."""
        while self.pending and self.free and not self.stopping:
            key, slot = self.pending.popleft(), self.free.pop(0)
            dev = self.slots[slot]
            proc = self.ctx.Process(
                target=_worker,
                args=(replace(self.worker_plan, device=dev), str(self.batch.run.path), *key,
                      self.threads, self.messages, dict(os.environ), os.getcwd(), self.parent),
                name=f"bench-{key[0]}-s{key[1]}",
            )  # fmt: skip
            proc.start()
            self.running[key] = job = _Job(key, proc, slot, dev)
            self.board.say(f"{key[0]} seed {key[1]}: started on {dev}")
            self.board.update(job)

    def drain(self, wait: float) -> None:
        """Handle the workers' messages (see :func:`_drain`)."""
        _drain(self.messages, self.running, self.board, self.written, self.errors, wait)

    def reap(self) -> None:
        """Collect ended workers; one that ended without a row gets a ``failed`` row."""
        for key, job in list(self.running.items()):
            if job.proc.is_alive():
                continue
            job.proc.join()
            self.drain(wait=0.0)
            if job.ended is None and not self.stopping:
                row = _died(self.batch.plan, self.batch.run, job)
                self.written.append(row)
                self.board.say(format_row(row))
            self.board.done(job)
            self.free.append(job.slot)
            self.free.sort()
            del self.running[key]


def _signal(proc: BaseProcess, sig: int) -> None:
    if proc.pid is not None and proc.is_alive():
        with contextlib.suppress(ProcessLookupError):  # it ended meanwhile
            os.kill(proc.pid, sig)


def _drain(
    messages: Any,
    running: dict[JobKey, _Job],
    board: Board,
    written: list[dict[str, Any]],
    errors: list[str],
    wait: float,
) -> None:
    """Handle every message waiting (blocking up to ``wait`` s for the first)."""
    block = wait > 0
    while True:
        try:
            kind, key, *payload = messages.get(block, wait) if block else messages.get_nowait()
        except queue_mod.Empty:
            return
        block = False
        job = running.get(tuple(key))
        if job is None:
            continue
        if kind == "progress":
            job.kimg, job.total, rate = payload
            job.rate = rate if rate is not None else job.rate
            job.phase = "training"
            board.update(job)
        elif kind == "phase":
            job.phase = payload[0]
            board.update(job)
        elif kind == "row":
            job.ended = "row"
            written.append(payload[0])
            board.say(format_row(payload[0]))
        elif kind == "error":
            job.ended = "error"
            errors.append(payload[0])
            board.say(f"{key[0]} seed {key[1]}: error: {payload[0]}")
        elif kind == "interrupted":  # where it stopped: at a step, or before its scores
            job.ended = "interrupted"
            board.say(f"{key[0]} seed {key[1]}: {payload[0]}")
        elif kind == "crash":
            job.crash = payload[0]


def _died(plan: RunPlan, run: RunFolder, job: _Job) -> dict[str, Any]:
    """The ``failed`` row of a worker that ended without one (killed, out of memory, a
    crash outside the job's own error handling); the job resumes on a rerun."""
    variant, seed = job.key
    code = job.proc.exitcode
    dead = code is not None and code < 0
    how = f"signal {signal.Signals(-code).name}" if dead else f"exit code {code}"
    job_dir = run.job_dir(variant, seed)
    job_dir.mkdir(parents=True, exist_ok=True)
    log = job_dir / "error.log"
    log.write_text(job.crash or f"worker process ended by {how} without a result\n", "utf-8")
    row = job_row(replace(plan, device=job.device), variant, seed)
    row.update({
        "status": "failed",
        "error": f"worker process died ({how})",
        "step": None,
        "kimg": 0.0,
        "paths": {"error_log": str(Path(variant) / f"seed{seed}" / "error.log")},
        "wall_seconds": round(time.monotonic() - job.started, 3),
        "finished_at": dt.datetime.now(dt.UTC).isoformat(),
    })  # fmt: skip
    record(run, row)
    return row
