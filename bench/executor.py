"""The dispatcher: ``execute`` owns a run folder, writes config.json first, skips finished
jobs, and hands the rest to one execution engine (:mod:`bench.engines`): ``local``, one
after another in this process; ``pool``, ``jobs > 1`` worker processes; ``slurm`` or
``submitit-local``, a submitit job array. Every engine runs :func:`bench.jobs.run_job` and
appends one row per job with :meth:`RunFolder.append_result`, safe under concurrent writers.
"""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Callable
from typing import Any

from bench.cluster import ClusterSettings
from bench.engines import make_engine
from bench.engines.common import Batch, EngineOptions
from bench.errors import RunFolderError
from bench.jobs import RUN_DEFINING, RunPlan, job_finished, make_scorer
from bench.provenance import git_commit, versions
from bench.runs import RunFolder, torn_tail
from models.plugins import describe, loaded_plugins, same_code
from models.registry import UnknownVariantError

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


def engine_name(options: EngineOptions, jobs_to_run: int | None = None) -> str:
    """The engine ``options`` ask for: the cluster's when given, else ``pool`` for more than
    one job at once (``jobs_to_run``: how many remain, when known; one job runs here)."""
    if options.cluster is not None:
        return options.cluster.engine
    if options.jobs > 1 and (jobs_to_run is None or jobs_to_run > 1):
        return "pool"
    return "local"


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

    ``jobs`` > 1 runs up to that many jobs at once in worker processes; ``cluster`` submits
    them as a job array, and ``detach`` returns once they are submitted (see
    :func:`engine_name`). Rows equal a one-at-a-time run's at the same threads per job.
    """
    options = EngineOptions(jobs=jobs, cluster=cluster, detach=detach)
    scorer = make_scorer(plan)
    scorer.check_references()  # a reference made with other weights fails before any writing
    engine = make_engine(engine_name(options), options)
    with engine.guard(run), run.locked():
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
        chosen = engine_name(options, len(todo))
        if chosen != engine_name(options):  # a pool of one job runs here
            engine = make_engine(chosen, options)
        return engine.run(Batch(plan, run, todo, scorer, echo))


def wait_for(
    plan: RunPlan,
    run: RunFolder,
    echo: Callable[[str], None] = print,
    jobs: int = 1,
    cluster: ClusterSettings | None = None,
) -> list[dict[str, Any]]:
    """Wait for the jobs of ``plan`` that a detached :func:`execute` left to the engine
    these options choose; return their rows (none for an engine that never detaches)."""
    options = EngineOptions(jobs=jobs, cluster=cluster)
    return make_engine(engine_name(options), options).wait(plan, run, echo)
