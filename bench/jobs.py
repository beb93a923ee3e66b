"""One (variant, seed) job in, one result row out: the seam every engine calls.

:class:`RunPlan` is what a command decided before training (profile, budget, numerics,
run-defining settings); :func:`run_job` is self-contained (it loads its data, trains,
scores and returns a JSON-ready row), so the sequential executor, the process pool
(:mod:`bench.pool`) and a cluster engine all run the same code and write the same rows.
"""

from __future__ import annotations

import datetime as dt
import time
import traceback
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch

from bench.data import Dataset, load_part
from bench.errors import BenchError, disk_error
from bench.harness import Diverged, Interrupted, Trainer, images_per_step, steps_for_budget
from bench.hooks import MetricTracker
from bench.profiles import Profile, get_profile
from bench.provenance import cpu_bf16, cpu_description
from bench.reference import load_reference
from bench.runs import FINISHED, RunFolder
from bench.scoring import Scorer
from bench.training import Hook, Precision, TrainSettings
from metrics.family import EvalSettings
from models.plugins import canonical, ensure_plugins
from models.registry import Variant, resolve_variant


def resolve_device(device: str) -> str:
    """'auto' -> 'cuda' when a GPU is visible, else 'cpu'; anything else unchanged."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def resolve_precision(precision: str, device: str, out: Path | str | None = None) -> Precision:
    """The training precision a run uses; 'fp32' and 'bf16' unchanged.

    'auto' (the default of every training command) is, in order: the precision recorded in
    ``out``'s config.json, so that the command that made a folder resumes it under a later
    default; bf16 autocast on a CPU with native bf16 (AVX-512 BF16 or AMX), where it is
    faster and its FID was measured within seed noise of fp32 (docs/speed.md);
    fp32 elsewhere: emulated bf16 is slower than fp32 on CPUs without those instructions,
    and on CUDA bf16 has not yet been validated against fp32 results.
    """
    if precision in ("fp32", "bf16"):
        return precision  # type: ignore[return-value]
    if precision != "auto":
        raise ValueError(f"precision {precision!r}: choose auto, fp32 or bf16")
    if out is not None:
        config = RunFolder(Path(out)).read_config()
        had = (config or {}).get("run", {}).get("precision")
        if had in ("fp32", "bf16"):
            return had  # type: ignore[no-any-return]
    if torch.device(device).type == "cpu" and cpu_bf16():
        return "bf16"
    return "fp32"


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
    # --plugin files or modules whose variants the run trains; each process loads them
    # before resolving a variant (installed entry points load with `models` anyway)
    plugins: tuple[str, ...] = ()

    @property
    def eval_settings(self) -> EvalSettings:
        """How every job of this run is scored."""
        n_inc = self.inception_samples
        return EvalSettings(
            num_samples=self.profile.eval_samples,
            inception_samples=self.profile.inception_samples if n_inc is None else n_inc,
            ppl_samples=self.profile.ppl_samples,
            copying_inception=self.profile.copying_inception,
            cas_samples=self.profile.cas_samples,
        )

    def variant(self, name: str) -> Variant:
        """The registered variant, with its seed-faithful data settings under ``faithful``
        and the ``--set`` overrides applied (ValueError when one does not fit it). The
        plan's plugins are loaded first, so a worker process resolves the same variants."""
        if self.plugins:
            ensure_plugins(self.plugins)
        return resolve_variant(name, self.faithful, dict(self.overrides))

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
        """The run-defining settings (:data:`RUN_DEFINING`), as stored in config.json."""
        out = {k: getattr(self, k) for k in RUN_DEFINING}
        return {**out, "profile": self.profile.name, "overrides": dict(self.overrides)}

    @classmethod
    def from_options(
        cls,
        profile: str,
        variants: tuple[str, ...],
        seeds: tuple[int, ...],
        kimg: float | None = None,
        out: str | Path | None = None,
        **options: Any,
    ) -> RunPlan:
        """A plan from a command's training options, named as the fields: paths become
        strings, ``kimg`` None means the profile's budget, and ``precision`` 'auto' (also
        when not given) is resolved for the run folder ``out`` (:func:`resolve_precision`).

        Raises:
            TypeError: for an option that is not a field (a CLI option without a home).
        """
        prof = get_profile(profile)
        for key in ("data_dir", "inception_weights"):
            if options.get(key) is not None:
                options[key] = str(options[key])
        options["reference_stats"] = tuple(str(p) for p in options.get("reference_stats", ()))
        options["plugins"] = tuple(canonical(str(p)) for p in options.get("plugins", ()))
        unknown = set(options) - {f.name for f in fields(cls)}
        if unknown:
            raise TypeError(f"RunPlan has no field(s) {sorted(unknown)}")
        options["precision"] = resolve_precision(
            options.get("precision", "auto"), options.get("device", "cpu"), out
        )
        return cls(
            profile=prof, variants=tuple(variants), seeds=tuple(seeds),
            kimg=prof.kimg if kimg is None else kimg, **options,
        )  # fmt: skip


# Settings that define a run's results: an existing folder refuses a rerun that changes them.
RUN_DEFINING = ("profile", "kimg", "precision", "channels_last", "faithful", "overrides")


def job_row(plan: RunPlan, variant_name: str, seed: int) -> dict[str, Any]:
    """The fields every row of a job starts with, whatever became of it: which job, under
    which profile, numerics, device and ``--set`` overrides."""
    row: dict[str, Any] = {
        "variant": variant_name,
        "seed": seed,
        "seed_doc": plan.variant(variant_name).seed_doc,
        "profile": plan.profile.name,
        "precision": plan.precision,
        "device": plan.device,
        "kimg_budget": plan.kimg,
    }
    if plan.overrides:
        row["overrides"] = dict(plan.overrides)
    origin = plan.variant(variant_name).origin
    if origin:
        row["origin"] = origin
    return row


def resolved_settings(plan: RunPlan, variant_name: str, seed: int) -> dict[str, Any]:
    """Every setting one job of ``plan`` trains and is scored under, resolved (profile
    defaults, ``--set`` overrides, seed-faithful data, 'auto' precision) and in the form
    the run records it: ``run`` and ``profile`` as in config.json, ``variant`` as its
    entry there, ``job`` as the row's first fields, ``train`` and ``eval`` as the loop and
    the scorer get them, with the steps the budget becomes."""
    variant = plan.variant(variant_name)
    train = plan.settings(seed)
    per_step = images_per_step(variant)
    return {
        "job": job_row(plan, variant_name, seed),
        "run": plan.defining(),
        "profile": plan.profile.to_dict(),
        "variant": variant.to_dict(),
        "train": {
            **train.to_dict(),
            "images_per_step": per_step,
            "total_steps": steps_for_budget(train.kimg, per_step),
            "threads": plan.threads,
        },
        "eval": asdict(plan.eval_settings),
        "data_dir": plan.data_dir,
        "plugins": list(plan.plugins),
    }


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
    row = job_row(plan, variant_name, seed)
    if torch.device(plan.device).type == "cpu":
        row["threads"] = torch.get_num_threads()
    row["cpu"] = cpu_description()  # the machine that scored it; train_cpus: who trained it
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
        row.update(status="ok", **_result_fields(asdict(result), job_dir))
        if tracker is not None:
            row["tracked"] = tracker.description()
            if (job_dir / tracker.FILE).is_file():
                row["paths"]["tracked"] = str(
                    (job_dir / tracker.FILE).relative_to(job_dir.parent.parent)
                )
        if scorer is not None:
            _score(plan, variant, scorer, trainer, job_dir, row)
    except Diverged as exc:
        row.update(
            status="diverged",
            error=str(exc),
            step=exc.step,
            kimg=round(trainer.kimg, 4) if trainer else 0.0,
            total_steps=trainer.total_steps if trainer else None,
        )
    except KeyboardInterrupt:  # Ctrl-C, or SIGTERM outside the loop (bench.signals.Terminated)
        if trainer is None or trainer.step < trainer.total_steps:
            raise
        raise Interrupted(  # it came after the last step: while scoring, or just before
            f"stopped after training {variant_name} seed {seed}, before its scores were "
            "written; the same command scores it from its last checkpoint"
        ) from None
    except (BenchError, Interrupted):
        raise  # user errors and Ctrl-C stop the whole run; the job stays resumable
    except Exception as exc:  # a crash in one variant must not stop the others
        disk = disk_error(exc)  # a full or read-only disk: the user's to fix, not a failed job
        if disk is not None:
            raise disk from None
        row.update(_failed(exc, job_dir, trainer))
    row["wall_seconds"] = round(time.perf_counter() - t0, 3)
    row["finished_at"] = dt.datetime.now(dt.UTC).isoformat()
    return row


def _score(
    plan: RunPlan, variant: Variant, scorer: Scorer, trainer: Trainer, job_dir: Path,
    row: dict[str, Any],
) -> None:  # fmt: skip
    """Score a trained job's G_ema (and its raw G where :func:`_scores_raw_g`) into ``row``."""
    strip, nearest = job_dir / "interpolation.png", job_dir / "nearest.png"
    row.update(scorer.score(variant, trainer.G_ema, strip, nearest))
    if "strip" in row.get("interpolation", {}):
        row["interpolation"]["strip"] = str(strip.relative_to(job_dir.parent.parent))
    if "nearest" in row:
        row["nearest"]["figure"] = str(nearest.relative_to(job_dir.parent.parent))
    if _scores_raw_g(plan, variant):
        row["raw_g"] = scorer.score_raw_g(variant, trainer.G)


def _scores_raw_g(plan: RunPlan, variant: Variant) -> bool:
    """Whether a job's row also scores its raw G on the Inception metrics: the profile asks
    for it (`lucic`), the run has Inception metrics, and the variant is set beside a
    published number (:func:`reports.published.published_for`), which scored G itself."""
    from reports.published import published_for

    if not plan.profile.raw_g_inception or plan.eval_settings.inception_samples <= 0:
        return False
    return published_for(variant.loss, variant.conditional) is not None


def _failed(exc: BaseException, job_dir: Path, trainer: Trainer | None) -> dict[str, Any]:
    """The fields of a ``failed`` row; the traceback goes to ``job_dir/error.log``."""
    job_dir.mkdir(parents=True, exist_ok=True)
    (job_dir / "error.log").write_text(traceback.format_exc(), encoding="utf-8")
    return {
        "status": "failed",
        "error": f"{type(exc).__name__}: {exc}",
        "step": trainer.step if trainer else 0,
        "kimg": round(trainer.kimg, 4) if trainer else 0.0,
        "paths": {"error_log": str((job_dir / "error.log").relative_to(job_dir.parent.parent))},
    }


def _result_fields(result: dict[str, Any], job_dir: Path) -> dict[str, Any]:
    paths = result.pop("paths")
    result["kimg"] = round(result["kimg"], 4)
    result["train_seconds"] = round(result["train_seconds"], 3)
    if result.get("train_cpu_seconds") is not None:
        result["train_cpu_seconds"] = round(result["train_cpu_seconds"], 3)
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


def record(run: RunFolder, row: dict[str, Any]) -> None:
    """Stamp ``row`` with the run id and append it to the run's results (safe under
    concurrent writers)."""
    row["run_id"] = run.run_id
    run.append_result(row)


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
