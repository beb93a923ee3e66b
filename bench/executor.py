"""The executor seam: one (variant, seed, profile) job in, one result row out.

:func:`run_job` is self-contained (it loads its data, trains, returns a JSON-ready row), so
any engine can call it per job; :func:`execute` owns a run folder: it writes config.json
first, skips finished jobs, and runs the rest, resuming unfinished ones from their
checkpoints, either one after another in this process or, with ``jobs > 1``, in a pool of
worker processes (:mod:`bench.pool`). Every engine appends one row per job with
:meth:`RunFolder.append_result`, which is safe under concurrent writers.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from bench.data import Dataset, load_part
from bench.errors import BenchError, RunFolderError
from bench.harness import Diverged, Hook, Interrupted, Precision, Trainer, TrainSettings
from bench.profiles import Profile
from bench.provenance import git_commit, versions
from bench.reference import load_reference
from bench.runs import FINISHED, RunFolder
from bench.scoring import MetricTracker, Scorer
from metrics.suite import EvalSettings
from models.data_options import DataOptions
from models.registry import Variant, get_variant

# Settings that define a run's results: an existing folder refuses a rerun that changes them.
_RUN_DEFINING = ("profile", "kimg", "precision", "channels_last", "faithful", "overrides")
_DEFINING_DEFAULTS: dict[str, Any] = {"overrides": {}}  # folders written before a key existed


def resolve_device(device: str) -> str:
    """'auto' -> 'cuda' when a GPU is visible, else 'cpu'; anything else unchanged."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


@dataclass(frozen=True)
class RunPlan:
    """Everything ``bench run`` / ``bench train`` decided before training starts."""

    profile: Profile
    variants: tuple[str, ...]
    seeds: tuple[int, ...]
    kimg: float  # the profile's budget unless overridden
    precision: Precision = "fp32"
    channels_last: bool = True
    device: str = "cpu"
    data_dir: str | None = None
    progress: bool | None = None
    faithful: bool = False  # train each variant on its seed document's own data settings
    overrides: tuple[tuple[str, str], ...] = ()  # --set KEY=VALUE, applied to every variant
    inception_weights: str | None = None  # TF-Inception file; else env, hub cache, download
    inception_samples: int | None = None  # None: the profile's
    reference_stats: tuple[str, ...] = ()  # files of `bench reference export`
    extend: bool = False  # a larger kimg on an existing folder continues its finished jobs
    # CPU intra-op threads per job; None: torch's default (all cores) for one job at a time,
    # cores // jobs in a pool. CPU float results depend on it, so every row records it.
    threads: int | None = None

    @property
    def eval_settings(self) -> EvalSettings:
        """How every job of this run is scored."""
        n_inc = self.inception_samples
        return EvalSettings(
            num_samples=self.profile.eval_samples,
            inception_samples=self.profile.inception_samples if n_inc is None else n_inc,
            ppl_samples=self.profile.ppl_samples,
        )

    def variant(self, name: str) -> Variant:
        """The registered variant, with its seed-faithful data settings under ``faithful``
        and the ``--set`` overrides applied (ValueError when one does not fit it)."""
        v = get_variant(name)
        v = v.as_seed_trained() if self.faithful else v
        return v.with_overrides(dict(self.overrides)) if self.overrides else v

    def settings(self, seed: int) -> TrainSettings:
        """Training settings of one job."""
        return TrainSettings(
            kimg=self.kimg,
            seed=seed,
            precision=self.precision,
            channels_last=self.channels_last,
            device=self.device,
            checkpoint_kimg=min(self.profile.checkpoint_kimg, self.kimg),
            grid_kimg=min(self.profile.grid_kimg, self.kimg),
            progress=self.progress,
        )

    def jobs(self) -> list[tuple[str, int]]:
        """(variant, seed) pairs in execution order: all variants for seed 0, then seed 1..."""
        return [(v, s) for s in self.seeds for v in self.variants]

    def defining(self) -> dict[str, Any]:
        """The run-defining settings, as stored in config.json."""
        return {
            "profile": self.profile.name,
            "kimg": self.kimg,
            "precision": self.precision,
            "channels_last": self.channels_last,
            "faithful": self.faithful,
            "overrides": dict(self.overrides),
        }


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
        differ = [k for k in _RUN_DEFINING if had.get(k, _DEFINING_DEFAULTS.get(k)) != asked[k]]
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
    seeds = sorted(set((old or {}).get("seeds", [])) | set(plan.seeds))
    config = {
        "run_id": run.run_id,
        "created": (old or {}).get("created", dt.datetime.now(dt.timezone.utc).isoformat()),
        "run": plan.defining(),
        "profile": plan.profile.to_dict(),
        "seeds": seeds,
        "variants": {name: plan.variant(name).to_dict() for name in variants},
        "device": plan.device,
        "data_dir": plan.data_dir,
        "versions": versions(),
        "git_commit": git_commit(),
        "command": argv if argv is not None else sys.argv,
        "history": [
            *(old or {}).get("history", []),
            {"at": dt.datetime.now(dt.timezone.utc).isoformat(), "command": argv or sys.argv},
        ],
    }
    run.write_config(config)
    return config


def make_scorer(plan: RunPlan) -> Scorer:
    """The scorer every job of ``plan`` is scored with (extractors load lazily)."""
    return Scorer(
        plan.eval_settings,
        plan.data_dir,
        plan.device,
        inception_weights=plan.inception_weights,
        references=[load_reference(Path(p)) for p in plan.reference_stats],
    )


def run_job(
    plan: RunPlan,
    variant_name: str,
    seed: int,
    job_dir: Path,
    data: Dataset | None = None,
    scorer: Scorer | None = None,
    hooks: list[Hook] | None = None,
) -> dict[str, Any]:
    """Train one (variant, seed) into ``job_dir`` and return its result row.

    A finished job is scored by ``scorer`` (G_ema, eval mode) into the same row; ``hooks``
    are added to the trainer's (a worker's progress reporter).
    A NaN/inf loss gives status ``diverged``; any other exception inside training gives
    ``failed`` with the message in the row and the traceback in ``job_dir/error.log``. User
    errors (missing data, a conflicting checkpoint) and interruptions propagate.
    """
    variant = plan.variant(variant_name)
    t0 = time.perf_counter()
    row: dict[str, Any] = {
        "variant": variant_name,
        "seed": seed,
        "seed_doc": variant.seed_doc,
        "profile": plan.profile.name,
        "precision": plan.precision,
        "device": plan.device,
        "kimg_budget": plan.kimg,
    }
    if torch.device(plan.device).type == "cpu":
        row["threads"] = torch.get_num_threads()
    if plan.overrides:
        row["overrides"] = dict(plan.overrides)
    if data is None:
        data = load_part(variant.data, "train", plan.data_dir)
    row["train_images"] = len(data)
    trainer: Trainer | None = None
    tracker: MetricTracker | None = None
    if scorer is not None and plan.profile.track_samples > 0:
        every = min(plan.profile.track_kimg, plan.kimg)
        tracker = MetricTracker(scorer, variant, every, plan.profile.track_samples)
    try:
        extra = [*([tracker] if tracker else []), *(hooks or [])]
        trainer = Trainer(variant, data, plan.settings(seed), job_dir, hooks=extra)
        result = trainer.train()
        row.update(status=result.status, **_result_fields(asdict(result), job_dir))
        if tracker is not None:
            row["tracked"] = tracker.description()
            if (job_dir / tracker.FILE).is_file():
                row["paths"]["tracked"] = str(
                    (job_dir / tracker.FILE).relative_to(job_dir.parent.parent)
                )
        if scorer is not None:
            strip = job_dir / "interpolation.png"
            row.update(scorer.score(variant, trainer.G_ema, strip_path=strip))
            if "strip" in row.get("interpolation", {}):
                row["interpolation"]["strip"] = str(strip.relative_to(job_dir.parent.parent))
    except Diverged as exc:
        row.update(
            status="diverged",
            error=str(exc),
            step=exc.step,
            kimg=round(trainer.kimg, 4) if trainer else 0.0,
            total_steps=trainer.total_steps if trainer else None,
        )
    except (BenchError, Interrupted, KeyboardInterrupt):
        raise  # user errors and Ctrl-C stop the whole run; the job stays resumable
    except Exception as exc:  # a crash in one variant must not stop the others
        job_dir.mkdir(parents=True, exist_ok=True)
        (job_dir / "error.log").write_text(traceback.format_exc(), encoding="utf-8")
        row.update(
            status="failed",
            error=f"{type(exc).__name__}: {exc}",
            step=trainer.step if trainer else 0,
            kimg=round(trainer.kimg, 4) if trainer else 0.0,
            paths={"error_log": str((job_dir / "error.log").relative_to(job_dir.parent.parent))},
        )
    row["wall_seconds"] = round(time.perf_counter() - t0, 3)
    row["finished_at"] = dt.datetime.now(dt.timezone.utc).isoformat()
    return row


def _result_fields(result: dict[str, Any], job_dir: Path) -> dict[str, Any]:
    paths = result.pop("paths")
    result.pop("status")
    result["kimg"] = round(result["kimg"], 4)
    result["train_seconds"] = round(result["train_seconds"], 3)
    result["img_per_s"] = round(result["img_per_s"], 1)
    result["paths"] = {k: str(Path(v).relative_to(job_dir.parent.parent)) for k, v in paths.items()}
    return result


def job_finished(row: dict[str, Any], kimg: float) -> bool:
    """Whether a job's latest row ends it at budget ``kimg``: diverged (deterministic, it
    would diverge again), or ok at this budget (a row of a smaller budget is continued by
    ``--extend``)."""
    if row.get("status") not in FINISHED:
        return False
    return row["status"] == "diverged" or float(row.get("kimg_budget", kimg)) >= kimg


def execute(
    plan: RunPlan,
    run: RunFolder,
    echo: Callable[[str], None] = print,
    argv: list[str] | None = None,
    jobs: int = 1,
) -> list[dict[str, Any]]:
    """Run every unfinished job of ``plan`` in ``run``; return the rows written now.

    ``jobs`` > 1 runs up to that many jobs at once in worker processes (:mod:`bench.pool`);
    the rows equal a one-at-a-time run's at the same threads per job.
    """
    scorer = make_scorer(plan)
    scorer.check_references()  # a reference made with other weights fails before any writing
    with run.locked():
        prepare_run(plan, run, argv)
        done = {k for k, r in run.latest().items() if job_finished(r, plan.kimg)}
        todo = []
        for variant_name, seed in plan.jobs():
            if (variant_name, seed) in done:
                echo(f"{variant_name} seed {seed}: finished earlier, skipped")
            else:
                todo.append((variant_name, seed))
        if jobs > 1 and len(todo) > 1:
            from bench.pool import execute_parallel

            return execute_parallel(plan, run, todo, jobs, scorer, echo)
        with _threads(plan.threads):
            return _execute_here(plan, run, todo, scorer, echo)


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


def record(run: RunFolder, row: dict[str, Any]) -> None:
    """Stamp ``row`` with the run id and append it to the run's results (safe under
    concurrent writers)."""
    row["run_id"] = run.run_id
    run.append_result(row)


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


def format_row(row: dict[str, Any]) -> str:
    """One human line per finished job."""
    head = f"{row['variant']} seed {row['seed']}: {row['status']}"
    if row["status"] == "ok":
        resumed = row.get("resumed_from_step")
        note = f", resumed at step {resumed}" if resumed else ""
        m = row.get("metrics") or {}
        scores = ""
        if "fid_fmnist" in m:
            scores = f"; FID(fmnist) {m['fid_fmnist']:.2f}, IS(fmnist) {m['is_fmnist']:.2f}"
        if "fid_inception" in m:
            scores += f", FID(inception, N={row['protocol']['inception']['num_samples']}) "
            scores += f"{m['fid_inception']:.1f}"
        if "is_inception" in m:
            scores += f", IS(inception) {m['is_inception']:.2f}"
        elif row.get("metrics_error"):
            scores = f"; no metrics: {row['metrics_error']}"
        return (
            f"{head}  {row['kimg']:.2f} kimg in {row['train_seconds']:.1f} s train "
            f"({row['img_per_s']:.0f} img/s){note}{scores}"
        )
    return f"{head}  at step {row.get('step')}: {row.get('error')}"
