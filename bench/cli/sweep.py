"""``bench sweep SPEC.toml``: Lucic-style hyper-parameter search (bench.sweep) on any
executor."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from bench.cli.base import cli
from bench.cli.options import (
    checked_device,
    cluster_options,
    cluster_settings,
    data_dir_option,
    device_option,
    plugin_option,
    precision_option,
    progress_option,
    threads_option,
)
from bench.runs import new_run_dir


@cli.command("sweep")
@click.argument("spec_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Sweep folder (default: a new runs/<time>-sweep-<name>). An existing one resumes.",
)
@data_dir_option
@device_option
@precision_option
@threads_option
@click.option("--jobs", type=click.IntRange(min=1), default=1, show_default=True,
              help="Local executor: run a setting's jobs (phase 2 seeds) N at a time.")  # fmt: skip
@progress_option
@click.option("--dry-run", is_flag=True, help="Print the settings; train nothing.")
@plugin_option
@cluster_options
def sweep_cmd(
    spec_file: Path,
    plugins: tuple[str, ...],
    out: Path | None,
    data_dir: Path | None,
    device: str,
    precision: str,
    threads: int | None,
    jobs: int,
    progress: bool | None,
    dry_run: bool,
    detach: bool,
    **engine: Any,
) -> None:
    """Search the hyper-parameters SPEC_FILE names, in two phases (Lucic et al. 2018).

    Phase 1 trains every setting with seed 0; phase 2 reruns each variant's best `top`
    settings (by the spec's metric) with `seeds` seeds. Each setting is a run folder
    SWEEP/sNN; `bench report SWEEP` ranks them, plots the metric against every searched
    hyper-parameter and tabulates phase 2 with intervals. Rerun the command to resume.
    With --executor slurm every setting of a phase is submitted at once and the command
    waits for the phase (keep it running, e.g. in tmux, or rerun it to resume waiting).
    """
    from bench.api import check_trainable
    from bench.executor import execute, wait_for
    from bench.jobs import RunPlan
    from bench.runs import RunFolder
    from bench.sweep import load_spec, run_sweep, setting_dir

    if detach:
        raise click.UsageError("bench sweep waits for phase 1 before phase 2; --detach is "
                               "for bench run")  # fmt: skip
    cluster = cluster_settings(**engine)
    if cluster is not None and jobs > 1:
        raise click.UsageError("--jobs is for the local executor")
    spec = load_spec(spec_file)
    if dry_run:
        for i, point in enumerate(spec.points()):
            label = " ".join(f"{k}={v}" for k, v in point.items())
            click.echo(f"s{i:02d}: {label}")
        click.echo(f"phase 2: best {spec.top} of each variant x {spec.seeds} seed(s)")
        return
    from bench.data import locate

    locate(str(data_dir) if data_dir else None)  # a data problem fails before any folder
    sweep = out if out is not None else new_run_dir(f"sweep-{spec.name}")
    dev = checked_device(device)
    pending: list[tuple[Any, Any]] = []

    def plan_for(
        run_dir: Path, variants: tuple[str, ...], seeds: tuple[int, ...], overrides: dict
    ) -> Any:
        return RunPlan.from_options(
            spec.profile, variants, seeds, spec.kimg, run_dir, device=dev, data_dir=data_dir,
            precision=precision,
            overrides=tuple(overrides.items()), progress=progress, threads=threads,
            plugins=plugins,
        )  # fmt: skip

    def execute_setting(run_dir: Path, variants: tuple, seeds: tuple, overrides: dict) -> None:
        plan, run = plan_for(run_dir, variants, seeds, overrides), RunFolder(run_dir)
        check_trainable(plan)  # a setting no network can train with: one message, no folder
        argv = ["bench", *sys.argv[1:]]
        execute(plan, run, echo=click.echo, argv=argv, jobs=jobs, cluster=cluster,
                detach=cluster is not None)  # fmt: skip
        if cluster is not None:
            pending.append((plan, run))

    def finish_phase() -> None:
        while pending:
            plan, run = pending.pop(0)
            wait_for(plan, run, click.echo, cluster=cluster)

    # Validate everything, then write: every phase-1 setting (phase 2 reruns some of them with
    # more seeds) must make a trainable plan before sweep.json or any setting folder exists.
    for i, point in enumerate(spec.points()):
        check_trainable(plan_for(setting_dir(sweep, i), spec.variants, (0,),
                                 {**dict(spec.fixed), **point}))  # fmt: skip
    click.echo(f"sweep folder: {sweep}")
    best = run_sweep(spec, sweep, execute_setting, finish_phase, click.echo)
    for variant, ids in best.items():
        click.echo(f"{variant}: best {', '.join(ids) or 'none (no setting finished ok)'}")
    click.echo(f"done; `bench report {sweep}` ranks the settings")
