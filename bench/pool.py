"""``bench run --jobs N``: up to N (variant, seed) jobs at once, each in its own process.

Why a process per job: a job that crashes hard (a segfault, the kernel's OOM killer) takes
only itself down, and its row says so; each job has its own CPU thread count and its own
CUDA context; memory is returned when the job ends. Small 28x28 GANs leave a GPU mostly
idle, so several jobs share one GPU well, and on a machine with several GPUs the jobs are
spread over them (worker slot i uses ``cuda:(i mod count)``). On the CPU each job gets
``plan.threads`` intra-op threads, by default ``cores // N``, so N jobs do not fight over
the cores.

Each worker runs the same :func:`bench.jobs.run_job` as the sequential executor and
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

from bench.data import load_part
from bench.errors import BenchError
from bench.harness import Interrupted, Trainer
from bench.hooks import Hook
from bench.jobs import RunPlan, format_row, job_row, make_scorer, record, run_job
from bench.runs import RunFolder
from bench.scoring import Scorer
from bench.signals import stop_on_signal
from metrics.evaluator import EvaluatorUnavailable
from metrics.family import MetricInputError
from metrics.inception import InceptionUnavailable

Key = tuple[str, int]
PARENT_POLL_S = 0.5  # how often a worker checks that the bench process that started it lives
STATUS_EVERY_S = 60.0  # without progress bars: one line naming every running job this often


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

    def __init__(self, messages: Any, key: Key) -> None:
        self.messages, self.key = messages, key

    def on_start(self, trainer: Trainer) -> None:
        self.total = trainer.total_steps * trainer.images_per_step / 1000
        self._t, self._k = time.monotonic(), trainer.kimg
        self.messages.put(("progress", self.key, trainer.kimg, self.total, None))

    def after_step(self, trainer: Trainer) -> None:
        now = time.monotonic()
        if now - self._t >= 1.0:
            rate = (trainer.kimg - self._k) * 1000 / (now - self._t)
            self._t, self._k = now, trainer.kimg
            self.messages.put(("progress", self.key, trainer.kimg, self.total, rate))

    def on_end(self, trainer: Trainer) -> None:
        if trainer.step == trainer.total_steps:
            self.messages.put(("phase", self.key, "scoring"))


def _context() -> Any:
    """The fork server where the platform has one (see the module docstring), else spawn;
    fork itself would copy the parent's threads and CUDA context."""
    if "forkserver" in mp.get_all_start_methods():
        from multiprocessing import forkserver

        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(["bench.pool"])
        forkserver.ensure_running()  # its imports overlap the parent's cache warming
        return ctx
    return mp.get_context("spawn")


def process_start(pid: int) -> str | None:
    """An identity of process ``pid`` that a reused pid does not share (its start time in
    /proc), '' where /proc is missing but the pid exists, None when it is gone or a zombie
    (killed, not yet reaped)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return None if fields[0] == "Z" else fields[19]
    except (OSError, IndexError):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        return ""


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
    key: Key
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


def warm_caches(plan: RunPlan, scorer: Scorer, todo: list[Key]) -> None:
    """Parse the data and extract the reference features once, here, so that N workers
    read them from the caches instead of computing the same thing N times at once. A
    failure is left for the jobs to report in their rows, as a one-at-a-time run does."""
    for options in {plan.variant(v).data for v, _ in todo}:
        load_part(options, "train", plan.data_dir)
        classes = options.classes
        try:
            scorer.reference(classes)
            if scorer.settings.inception_samples > 0:
                scorer.inception_reference(classes)
        except (EvaluatorUnavailable, InceptionUnavailable, MetricInputError):
            pass


def execute_parallel(
    plan: RunPlan,
    run: RunFolder,
    todo: list[Key],
    jobs: int,
    scorer: Scorer,
    echo: Callable[[str], None],
    status_every: float = STATUS_EVERY_S,
) -> list[dict[str, Any]]:
    """Run ``todo`` in up to ``jobs`` worker processes; return the rows written now.

    Raises:
        BenchError: a worker met a user error (the first one); running jobs finish first.
        Interrupted: Ctrl-C or SIGTERM; every started job checkpointed and can resume.
    """
    ctx = _context()
    messages = ctx.Queue()
    slots = job_devices(plan.device, jobs)
    threads = threads_per_job(plan, jobs)
    worker_plan = replace(plan, progress=False)
    warm_caches(plan, scorer, todo)
    bars = plan.progress if plan.progress is not None else sys.stderr.isatty()
    board = Board(echo, bars, status_every)
    pending: deque[Key] = deque(todo)
    running: dict[Key, _Job] = {}
    free = list(range(jobs))
    written: list[dict[str, Any]] = []
    errors: list[str] = []
    stopping = False
    cpu = torch.device(plan.device).type == "cpu"
    where = f"{threads} thread(s) each" if cpu else "devices " + ", ".join(sorted(set(slots)))
    echo(f"{len(todo)} job(s), up to {jobs} at a time ({where})")
    parent = (os.getpid(), process_start(os.getpid()))
    try:
        with stop_on_signal() as stop:
            while pending or running:
                if stop.is_set() and not stopping:
                    stopping = True
                    pending.clear()
                    for job in running.values():
                        _signal(job.proc, signal.SIGTERM)  # checkpoint and stop
                if errors:
                    pending.clear()  # a user error: start nothing new, let running jobs end
                while pending and free and not stopping:
                    key, slot = pending.popleft(), free.pop(0)
                    dev = slots[slot]
                    proc = ctx.Process(
                        target=_worker,
                        args=(replace(worker_plan, device=dev), str(run.path), *key, threads,
                              messages, dict(os.environ), os.getcwd(), parent),
                        name=f"bench-{key[0]}-s{key[1]}",
                    )  # fmt: skip
                    proc.start()
                    running[key] = job = _Job(key, proc, slot, dev)
                    board.say(f"{key[0]} seed {key[1]}: started on {dev}")
                    board.update(job)
                _drain(messages, running, board, written, errors, wait=0.5)
                for key, job in list(running.items()):
                    if job.proc.is_alive():
                        continue
                    job.proc.join()
                    _drain(messages, running, board, written, errors, wait=0.0)
                    if job.ended is None and not stopping:
                        row = _died(plan, run, job)
                        written.append(row)
                        board.say(format_row(row))
                    board.done(job)
                    free.append(job.slot)
                    free.sort()
                    del running[key]
                board.tick(list(running.values()))
            if stopping:  # raised inside: the signal was handled, not to be raised again
                raise Interrupted("every running job saved a checkpoint")
    except KeyboardInterrupt:  # a second Ctrl-C: stop now; the last checkpoints stay
        for job in running.values():
            _signal(job.proc, signal.SIGKILL)
            job.proc.join()
        raise
    finally:
        board.close()
        messages.close()
    if errors:
        raise BenchError(errors[0])
    return written


def _signal(proc: BaseProcess, sig: int) -> None:
    if proc.pid is not None and proc.is_alive():
        with contextlib.suppress(ProcessLookupError):  # it ended meanwhile
            os.kill(proc.pid, sig)


def _drain(
    messages: Any,
    running: dict[Key, _Job],
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
        elif kind == "interrupted":
            job.ended = "interrupted"
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
