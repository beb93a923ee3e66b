"""Run folders: ``runs/<id>-<desc>/`` with config.json, one folder per job, results.jsonl.

``results.jsonl`` is append-only: one JSON object per finished (variant, seed) job, written
with a single append. Tables and figures are derived from it; a job run again appends a newer
row, and readers take the latest row per job. A lock file (``flock``) keeps a second process
out of a folder in use; the kernel drops the lock when its holder dies, even by SIGKILL.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.errors import RunFolderError
from bench.fsutil import append_line, atomic_write_json, read_json

JobKey = tuple[str, int]  # (variant, seed): one job of a run
CONFIG = "config.json"
RESULTS = "results.jsonl"
LOCK = ".lock"
# A job's step, kimg and training time at its last checkpoint (bench.harness writes it with
# every checkpoint): what `bench status` reads for a job's pace without loading torch.
PROGRESS = "progress.json"
# tracked.csv's columns: written by bench.hooks.MetricTracker, read by bench report
TRACKED_COLUMNS = ("step", "kimg", "fid_fmnist", "is_fmnist")
ENV_RUNS_DIR = "FMGAN_RUNS_DIR"
JOB_LOCK_WAIT_S = 60.0  # a stopping worker's checkpoint write; then the job is refused
FINISHED = ("ok", "diverged")  # a rerun of a diverged job would diverge again: deterministic


def runs_root() -> Path:
    """Parent folder of new run folders (``FMGAN_RUNS_DIR``, default ``./runs``)."""
    return Path(os.environ.get(ENV_RUNS_DIR, "runs"))


def new_run_dir(desc: str, root: Path | None = None) -> Path:
    """A fresh, not yet existing ``<root>/<YYYYmmdd-HHMMSS>-<desc>`` path."""
    root = runs_root() if root is None else root
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    slug = re.sub(r"[^a-z0-9.-]+", "-", desc.lower()).strip("-")[:60] or "run"
    path, n = root / f"{stamp}-{slug}", 1
    while path.exists():
        n += 1
        path = root / f"{stamp}-{slug}-{n}"
    return path


def read_results(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """All rows of a results.jsonl, oldest first.

    A torn (unterminated) last line, the tail of an append that a kill or a copy cut short,
    is left out: :func:`torn_tail` says so, and the next append repairs the file first.

    Raises:
        RunFolderError: naming the file and line of a row that is not valid JSON or lacks
            what every row has (``variant``, ``seed``, ``status``; numbers for metrics).
    """
    p = Path(path)
    if not p.is_file():
        return []
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RunFolderError(f"{p}: cannot read ({exc})") from None
    lines = text.split("\n")
    if not text.endswith("\n"):
        lines = lines[:-1]  # the tail of an interrupted append
    rows = []
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise RunFolderError(f"{p}:{i}: not valid JSON ({exc.msg})") from None
        problem = _row_problem(row)
        if problem:
            raise RunFolderError(f"{p}:{i}: not a result row of fmgan-bench ({problem})")
        rows.append(row)
    return rows


def _row_problem(row: Any) -> str | None:
    """What makes ``row`` unusable as a result row, or None."""
    if not isinstance(row, dict):
        return f"a JSON {type(row).__name__}, not an object"
    for key, kind in (("variant", str), ("seed", int), ("status", str)):
        if not isinstance(row.get(key), kind) or isinstance(row.get(key), bool):
            return f"{key!r} missing or not a {kind.__name__}"
    metrics = row.get("metrics", {})
    if not isinstance(metrics, dict):
        return "'metrics' is not an object"
    for key, value in metrics.items():
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            return f"metric {key!r} is {value!r}, not a number"
    return None


def torn_tail(path: str | os.PathLike[str]) -> str | None:
    """Where results.jsonl ends in a torn line (file:line and its size), or None. That job's
    row was lost; ``bench run`` on the folder recomputes it from the job's checkpoint."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError:
        return None
    if not data or data.endswith(b"\n"):
        return None
    line = data.count(b"\n") + 1
    size = len(data) - (data.rfind(b"\n") + 1)
    return (
        f"{p}:{line}: torn last line ({size} bytes without an end: an interrupted write) left out"
    )


@contextlib.contextmanager
def exclusive(lock_path: Path, message: str, wait_s: float = 0.0) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``lock_path`` (created with its folder), or raise
    RunFolderError(``message`` with ``{holder}`` filled in by the holder's pid) once
    ``wait_s`` seconds have passed. The kernel drops the lock when its holder dies, even by
    SIGKILL."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    fh = open(lock_path, "a+")  # noqa: SIM115 (held open for the lock's lifetime)
    deadline = time.monotonic() + wait_s
    try:
        while True:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() < deadline:
                    time.sleep(0.2)
                    continue
                fh.seek(0)
                holder = fh.read().strip() or "unknown"
                raise RunFolderError(message.format(holder=holder)) from None
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        yield
    finally:
        fh.close()  # closing releases the lock


class RunFolder:
    """One run folder; use :meth:`locked` around anything that writes to it."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    @property
    def run_id(self) -> str:
        """The folder name, which is the run's id."""
        return self.path.name

    @property
    def results_path(self) -> Path:
        """Path of results.jsonl."""
        return self.path / RESULTS

    def job_dir(self, variant: str, seed: int) -> Path:
        """Folder of one (variant, seed) job."""
        return self.path / variant / f"seed{seed}"

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the folder's exclusive lock, or fail at once naming the holder."""
        with exclusive(
            self.path / LOCK,
            f"{self.path} is in use by another bench process (pid {{holder}}); "
            "wait for it to finish or use another --out folder",
        ):
            yield

    @contextlib.contextmanager
    def job_locked(self, variant: str, seed: int) -> Iterator[None]:
        """Hold one job's lock while it trains: two engines (a pool worker and an orphan of
        a killed run, two cluster tasks) never write the same checkpoint. Waits up to
        :data:`JOB_LOCK_WAIT_S` for a holder that is stopping (the worker of a killed
        parent writing its last checkpoint) before it refuses."""
        with exclusive(
            self.job_dir(variant, seed) / LOCK,
            f"{variant} seed {seed} in {self.path} is being trained by another process "
            "(pid {holder}); wait for it to finish",
            wait_s=JOB_LOCK_WAIT_S,
        ):
            yield

    def read_config(self) -> dict[str, Any] | None:
        """config.json, or None for a new folder."""
        p = self.path / CONFIG
        if not p.is_file():
            return None
        config = read_json(p, RunFolderError)
        shapes = {"run": dict, "variants": dict, "seeds": list, "history": list}
        given = config if isinstance(config, dict) else {}
        bad = [k for k, kind in shapes.items() if k in given and not isinstance(given[k], kind)]
        if not isinstance(config, dict) or bad:
            what = ", ".join(f"{k!r} is not a {shapes[k].__name__}" for k in bad) or "not an object"
            raise RunFolderError(f"{p}: not a run configuration of fmgan-bench ({what}); "
                                 "restore it or use a new --out folder")  # fmt: skip
        return config

    def write_config(self, config: dict[str, Any]) -> None:
        """Write config.json atomically."""
        atomic_write_json(self.path / CONFIG, config)

    def results(self) -> list[dict[str, Any]]:
        """All result rows, oldest first."""
        return read_results(self.results_path)

    def latest(self) -> dict[JobKey, dict[str, Any]]:
        """The newest row of each (variant, seed) job."""
        return {(r["variant"], int(r["seed"])): r for r in self.results()}

    def append_result(self, row: dict[str, Any]) -> None:
        """Append one row (one line, one write)."""
        append_line(self.results_path, json.dumps(row, sort_keys=True, default=str))
