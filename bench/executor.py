"""Executors own a run folder: ``execute`` writes config.json first, skips finished jobs,
and runs the rest, resuming unfinished ones from their checkpoints, either one after another
in this process, with ``jobs > 1`` in a pool of worker processes (:mod:`bench.pool`), or as a
submitit job array on Slurm or local processes (:mod:`bench.cluster`).
Every engine runs :func:`bench.jobs.run_job` and appends one row per job with
:meth:`RunFolder.append_result`, which is safe under concurrent writers.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import shutil
import sys
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import torch

from bench.data import Dataset, load_part
from bench.errors import RunFolderError
from bench.jobs import RUN_DEFINING, RunPlan, format_row, job_finished, make_scorer, record, run_job
from bench.pool import execute_parallel
from bench.provenance import git_commit, versions
from bench.runs import CONFIG, RunFolder, torn_tail
from bench.scoring import Scorer
from metrics.common import write_atomic
from models.data_options import DataOptions
from models.plugins import describe, loaded_plugins, same_code
from models.registry import UnknownVariantError

if TYPE_CHECKING:
    from bench.cluster import ClusterSettings

_DEFINING_DEFAULTS: dict[str, Any] = {"overrides": {}}  # folders written before a key existed


def prepare_run(plan: RunPlan, run: RunFolder, argv: list[str] | None = None) -> dict[str, Any]:
    """Write (or extend) config.json before any training; refuse conflicting settings.

    A rerun may add variants or seeds to an existing folder; it may not change the profile,
    the budget or the numerics, which would make its rows incomparable.
    """
    old = run.read_config()
    if old is not None:
        had = old.get("run", {})
        if plan.extend and float(had.get("kimg", plan.kimg)) > plan.kimg:
            raise RunFolderError(
                f"{run.path} was trained to {had.get('kimg')} kimg; --extend only grows the "
                f"budget (asked {plan.kimg:g})"
            )
        asked = plan.defining()
        differ = [k for k in RUN_DEFINING if had.get(k, _DEFINING_DEFAULTS.get(k)) != asked[k]]
        if plan.extend and "kimg" in differ:
            differ.remove("kimg")  # a larger budget: the jobs continue
        clash = [f"{k}: folder has {had.get(k)!r}, asked {asked[k]!r}" for k in differ]
        if "kimg" in differ:
            clash.append("a larger kimg continues the finished jobs with --extend")
        if clash:
            raise RunFolderError(
                f"{run.path} was made with other settings ({'; '.join(clash)}); "
                "rerun with the original settings or choose a new --out folder"
            )
    variants = list(dict.fromkeys([*(old or {}).get("variants", {}), *plan.variants]))
    described = {}
    for name in variants:
        try:
            described[name] = plan.variant(name).to_dict()
        except UnknownVariantError:
            origin = (old or {}).get("variants", {}).get(name, {}).get("origin")
            raise RunFolderError(
                f"{run.path} holds variant {name!r}, which is not registered now"
                + (
                    f"; it came from plugin {describe(origin)}: give --plugin "
                    f"{origin.get('file') or origin.get('module')}"
                    if origin
                    else ""
                )
            ) from None
    for name, now in described.items():  # refused before config.json changes, not after
        recorded = (old or {}).get("variants", {}).get(name)
        was = recorded.get("origin") if isinstance(recorded, dict) else None
        if recorded is not None and not same_code(was, now.get("origin")):
            raise RunFolderError(
                f"{run.path} holds variant {name!r} made by {describe(was)}, but it now comes "
                f"from {describe(now.get('origin'))}: its code changed since; use a new --out "
                "folder or the plugin code the run used"
            )
    seeds = sorted(set((old or {}).get("seeds", [])) | set(plan.seeds))
    config = {
        "run_id": run.run_id,
        "created": (old or {}).get("created", dt.datetime.now(dt.UTC).isoformat()),
        "run": plan.defining(),
        "profile": plan.profile.to_dict(),
        "seeds": seeds,
        "variants": described,
        "plugins": [p.origin for p in loaded_plugins()],
        "device": plan.device,
        "data_dir": plan.data_dir,
        "versions": versions(),
        "git_commit": git_commit(),
        "command": argv if argv is not None else sys.argv,
        "history": [
            *(old or {}).get("history", []),
            {"at": dt.datetime.now(dt.UTC).isoformat(), "command": argv or sys.argv},
        ],
    }
    run.write_config(config)
    return config


def execute(
    plan: RunPlan,
    run: RunFolder,
    echo: Callable[[str], None] = print,
    argv: list[str] | None = None,
    jobs: int = 1,
    cluster: ClusterSettings | None = None,
    detach: bool = False,
) -> list[dict[str, Any]]:
    """Run every unfinished job of ``plan`` in ``run``; return the rows written now.

    ``jobs`` > 1 runs up to that many jobs at once in worker processes (:mod:`bench.pool`);
    ``cluster`` submits them as a job array (:mod:`bench.cluster`), and ``detach`` returns
    once they are submitted. Rows equal a one-at-a-time run's at the same threads per job.
    """
    scorer = make_scorer(plan)
    scorer.check_references()  # a reference made with other weights fails before any writing
    if cluster is not None:
        with _undone_if_refused(run):
            return _execute_locked(plan, run, echo, argv, jobs, cluster, detach, scorer)
    return _execute_locked(plan, run, echo, argv, jobs, cluster, detach, scorer)


def _execute_locked(
    plan: RunPlan,
    run: RunFolder,
    echo: Callable[[str], None],
    argv: list[str] | None,
    jobs: int,
    cluster: ClusterSettings | None,
    detach: bool,
    scorer: Scorer,
) -> list[dict[str, Any]]:
    with run.locked():
        for stale in run.path.glob(".*.tmp"):  # config.json's, from a killed write
            stale.unlink(missing_ok=True)
        prepare_run(plan, run, argv)
        torn = torn_tail(run.results_path)
        if torn:
            echo(f"warning: {torn}; `bench run` now recomputes that job's row")
        done = {k for k, r in run.latest().items() if job_finished(r, plan.kimg)}
        todo = []
        for variant_name, seed in plan.jobs():
            if (variant_name, seed) in done:
                echo(f"{variant_name} seed {seed}: finished earlier, skipped")
            else:
                todo.append((variant_name, seed))
        if cluster is not None:
            from bench.cluster import execute_cluster

            return execute_cluster(plan, run, todo, cluster, echo, detach, scorer) if todo else []
        if jobs > 1 and len(todo) > 1:
            return execute_parallel(plan, run, todo, jobs, scorer, echo)
        with _threads(plan.threads):
            return _execute_here(plan, run, todo, scorer, echo)


@contextlib.contextmanager
def _undone_if_refused(run: RunFolder) -> Iterator[None]:
    """A submission the scheduler refuses (no controller, a bad partition) leaves the folder
    as it found it: a folder this command made is removed, an existing one gets its
    config.json back and loses the submission files made for the refused array."""
    from bench.cluster import ClusterError
    from bench.scheduler import FOLDER

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


def _execute_here(
    plan: RunPlan,
    run: RunFolder,
    todo: list[tuple[str, int]],
    scorer: Scorer,
    echo: Callable[[str], None],
) -> list[dict[str, Any]]:
    written: list[dict[str, Any]] = []
    data_cache: dict[tuple[DataOptions, str | None], Dataset] = {}
    for variant_name, seed in todo:
        options = plan.variant(variant_name).data
        key = (options, plan.data_dir)
        if key not in data_cache:
            data_cache[key] = load_part(options, "train", plan.data_dir)
        with run.job_locked(variant_name, seed):
            job_dir = run.job_dir(variant_name, seed)
            row = run_job(plan, variant_name, seed, job_dir, data_cache[key], scorer)
            record(run, row)
        written.append(row)
        echo(format_row(row))
    return written


@contextlib.contextmanager
def _threads(n: int | None) -> Iterator[None]:
    """torch's intra-op thread count set to ``n`` for the block (None: unchanged)."""
    before = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
