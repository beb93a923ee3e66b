"""``bench list``, ``bench train`` and ``bench run``: the registry, and training into run
folders."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import click

from bench.cli.base import cli
from bench.cli.options import (
    check_variant,
    checked_device,
    cluster_options,
    cluster_settings,
    parse_variants,
    plugin_option,
    train_options,
    variant_names,
)
from bench.runs import RunFolder, new_run_dir


@cli.command("list")
@plugin_option
def list_cmd(plugins: tuple[str, ...]) -> None:
    """List registered variants: seed document, loss, resolution, batch, parameter counts,
    and where each comes from (fmgan-bench, or a plugin's package or file and sha256)."""
    import models
    from models.plugins import describe
    from models.registry import count_parameters

    header = ("variant", "seed", "loss", "res", "cond", "batch", "G params", "D params", "origin")
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
                describe(v.origin),
            )
        )
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]
    for r in (header, *rows):
        click.echo("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())


@cli.command("train")
@click.argument("variant", callback=lambda c, p, v: check_variant(v))
@train_options
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Run folder (default: a new runs/<time>-train-<variant>). An existing one resumes.",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Print the job's state and every resolved setting (JSON, as the run records "
    "them); train nothing.",
)
def train_cmd(variant: str, seed: int, out: Path | None, dry_run: bool, **kw: Any) -> None:
    """Train one VARIANT with one seed; writes a run folder like `bench run`.

    The folder holds config.json, results.jsonl and VARIANT/seedS/ with checkpoint.pt,
    losses.csv and sample grids. Running the same command with --out on an existing folder
    resumes from the last checkpoint.
    """
    _train_and_score(
        variants=(variant,), seeds=(seed,), out=out, desc=f"train-{variant}",
        dry_run="json" if dry_run else None, jobs=1, **kw,
    )  # fmt: skip


@cli.command("run")
@click.option("--all", "all_", is_flag=True, help="Every registered variant.")
@click.option(
    "--variants",
    callback=parse_variants,
    default=None,
    help="Comma-separated variant names, e.g. dcgan,wgan-gp.",
)
@train_options
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
@cluster_options
@click.option("--dry-run", is_flag=True, help="Print the jobs and their state; train nothing.")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="With --dry-run: print every job's resolved settings as JSON (as the run records "
    "them) instead of the summary.",
)
def run_cmd(
    all_: bool, variants: tuple | None, seeds: int, out: Path | None, as_json: bool, **kw: Any
) -> None:
    """Train and score variants x seeds into one run folder.

    Writes config.json first (resolved settings, versions, git commit), then per job a folder
    VARIANT/seedS/ and one row per job in results.jsonl. Rerun with --out on the same folder
    to resume after an interruption. With --jobs N, up to N jobs run at once in separate
    processes; a crash in one does not stop the others. With --executor slurm every job is
    one task of a Slurm job array (submitit), requeued and resumed after a timeout or a
    preemption; `bench status RUN_DIR` follows them.
    """
    if all_ and variants:
        raise click.UsageError("give either --all or --variants, not both")
    if not all_ and not variants:
        raise click.UsageError("say which variants: --all or --variants a,b")
    names = tuple(variant_names()) if all_ else variants
    assert names is not None
    desc = "all" if all_ else "-".join(names)
    engine = {
        k: kw.pop(k) for k in list(kw) if k == "executor" or k.startswith(("slurm_", "cluster_"))
    }
    detach = kw.pop("detach")
    if as_json and not kw["dry_run"]:
        raise click.UsageError("--json goes with --dry-run")
    kw["dry_run"] = ("json" if as_json else "summary") if kw["dry_run"] else None
    cluster = cluster_settings(**engine)
    if cluster is None and detach:
        raise click.UsageError("--detach needs --executor slurm or submitit-local")
    if cluster is not None and kw["jobs"] > 1:
        raise click.UsageError(
            "--jobs is for the local executor; with slurm or submitit-local "
            "every job is its own task (--slurm-parallel bounds them)"
        )
    _train_and_score(variants=names, seeds=tuple(range(seeds)), out=out, desc=desc,
                     cluster=cluster, detach=detach, **kw)  # fmt: skip


def _train_and_score(
    *,
    variants: tuple[str, ...],
    seeds: tuple[int, ...],
    out: Path | None,
    desc: str,
    dry_run: str | None,
    jobs: int,
    cluster: Any = None,
    detach: bool = False,
    **options: Any,
) -> None:
    """Build the command's one run plan from the training options (declared once, in
    ``train_options``, under RunPlan's field names) and run it, or print it: ``dry_run``
    'summary' one line per job, 'json' every job's resolved settings."""
    from bench.api import plan_run, run_plan

    options["device"] = checked_device(options["device"])
    profile, kimg = options.pop("profile"), options.pop("kimg")
    plan = plan_run(variants, seeds, profile, out, kimg=kimg, check_data=not dry_run, **options)
    run = RunFolder(out if out is not None else new_run_dir(f"{plan.profile.name}-{desc}"))
    if dry_run:
        _print_plan(plan, run, dry_run == "json")
        return
    t0 = time.perf_counter()
    rows = run_plan(plan, run.path, jobs=jobs, cluster=cluster, detach=detach, echo=click.echo,
                    argv=["bench", *sys.argv[1:]])  # fmt: skip
    if detach:
        return
    bad = [r for r in rows if r["status"] != "ok"]
    click.echo(
        f"done in {time.perf_counter() - t0:.1f} s: {len(rows) - len(bad)} ok, "
        f"{len(bad)} not ok; results in {run.results_path}"
    )


def _fmt_overrides(overrides: tuple[tuple[str, str], ...]) -> str:
    return " ".join(f"{k}={v}" for k, v in overrides)


def _print_plan(plan: Any, run: RunFolder, as_json: bool) -> None:
    import json

    from bench.harness import images_per_step, steps_for_budget
    from bench.jobs import job_finished, resolved_settings

    if as_json:
        jobs = [resolved_settings(plan, name, seed) for name, seed in plan.jobs()]
        click.echo(json.dumps(jobs[0] if len(jobs) == 1 else jobs, indent=2, sort_keys=True))
        return
    latest = run.latest() if run.results_path.is_file() else {}
    click.echo(f"run folder: {run.path} ({'exists' if run.path.exists() else 'new'})")
    faithful = ", seed-faithful data" if plan.faithful else ""
    click.echo(
        f"profile {plan.profile.name}: {plan.kimg:g} kimg per job, {plan.precision}{faithful}"
        + (f", overrides {_fmt_overrides(plan.overrides)}" if plan.overrides else "")
    )
    for name, seed in plan.jobs():
        v = plan.variant(name)
        per_step = images_per_step(v)
        steps = steps_for_budget(plan.kimg, per_step)
        state = "new"
        if job_finished(latest.get((name, seed), {}), plan.kimg):
            state = f"finished ({latest[(name, seed)]['status']}), skip"
        elif (run.job_dir(name, seed) / "checkpoint.pt").is_file():
            state = "resume from checkpoint"
        click.echo(f"  {name:<20} seed {seed}  {steps:>6} steps x {per_step} img  {state}")
