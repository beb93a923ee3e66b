"""``bench report``, ``bench check``, ``bench thresholds`` and ``bench status``: tables,
figures and the HTML report; the quality gate and its bounds from seed spread; where each job
of a run stands."""

from __future__ import annotations

from pathlib import Path

import click

from bench.cli.base import Fail, cli
from bench.cli.options import variant_names
from bench.runs import RunFolder, new_run_dir, torn_tail


def warn_torn(run_dir: Path) -> None:
    """Say so on stderr when the folder's results.jsonl ends in a torn line."""
    message = torn_tail(RunFolder(run_dir).results_path)
    if message:
        click.echo(f"warning: {message}; `bench run` with the same --out recomputes that "
                   "job's row", err=True)  # fmt: skip


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

    A sweep folder (`bench sweep`) gets its own page: phase-1 settings ranked, the metric
    against every searched hyper-parameter, phase 2 over seeds with intervals.
    """
    from bench.reports import html_path, write_report
    from bench.sweep import read_sweep

    if len(run_dirs) == 1 and read_sweep(run_dirs[0]) is not None:
        from bench.sweep_report import write_sweep_report

        markdown, page = write_sweep_report(run_dirs[0], out or run_dirs[0] / "report")
        click.echo(markdown)
        click.echo(f"report: {page} (self-contained HTML); tables beside it: phase1.csv, "
                   "phase2.csv, tables.md")  # fmt: skip
        return
    for d in run_dirs:
        if not (d / "results.jsonl").is_file():
            raise Fail(f"{d}: no results.jsonl (not a run folder, or no job finished yet)", 2)
        warn_torn(d)
    if out is None:
        out = run_dirs[0] / "report" if len(run_dirs) == 1 else new_run_dir("report")
    is_file = html_path(out) == out
    if out.exists() and out.is_dir() == is_file:
        raise Fail(
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
        raise Fail(f"{run_dir}: no results.jsonl (not a run folder?)", 2)
    warn_torn(run_dir)
    from bench.runs import read_results

    # a plugin variant is known from the run's own rows: `bench check` runs no plugin code
    in_run = [str(r["variant"]) for r in read_results(run_dir / "results.jsonl")]
    rules = load_thresholds(thresholds, list(dict.fromkeys([*variant_names(), *in_run])))
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


@cli.command("thresholds")
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--variants",
    default=None,
    help="Comma-separated variants to bound (default: every variant in the run).",
)
@click.option(
    "--metrics",
    default="kid_fmnist,is_fmnist",
    show_default=True,
    help="Comma-separated metrics to bound.",
)
@click.option(
    "--sigmas",
    type=click.FloatRange(min=0, min_open=True),
    default=4.0,
    show_default=True,
    help="How many sample standard deviations beyond the seeds' mean each bound sits.",
)
@click.option(
    "--two-sided",
    default="",
    help="Comma-separated metrics (of --metrics) bounded on both sides of the mean: a "
    "change that moves them beyond the seed noise either way fails, an unexplained "
    "improvement included. Leave out bounded counts such as class_coverage, whose upper "
    "bound may fall below their best value.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the TOML here (atomically) instead of printing it.",
)
def thresholds_cmd(
    run_dir: Path,
    variants: str | None,
    metrics: str,
    sigmas: float,
    two_sided: str,
    out: Path | None,
) -> None:
    """Derive a thresholds file for `bench check` from the seed spread of RUN_DIR.

    Train the gated variants at the gate's own profile and numerics over several seeds
    (`bench run --seeds 5`), then bound each metric at mean -/+ SIGMAS standard deviations
    on its bad side (both sides for the --two-sided ones), so that a one-seed gate passes
    whichever seed it draws and fails what lies beyond the seeds' noise (with 5 seeds and
    4 standard deviations, a fresh seed crosses a given bound with about 1% probability
    under normality). Each bound is commented with the mean and std behind it.
    """
    from bench.check import ThresholdsError, derive_thresholds, thresholds_toml
    from bench.fsutil import atomic_write_text

    if not (run_dir / "results.jsonl").is_file():
        raise Fail(f"{run_dir}: no results.jsonl (not a run folder?)", 2)
    warn_torn(run_dir)
    names = [m.strip() for m in metrics.split(",") if m.strip()]
    if not names:
        raise ThresholdsError("--metrics is empty")
    rows = RunFolder(run_dir).results()
    if variants is not None:
        wanted = [v.strip() for v in variants.split(",") if v.strip()]
        missing = [v for v in wanted if v not in {str(r["variant"]) for r in rows}]
        if not wanted or missing:
            raise ThresholdsError(f"--variants: no rows for {', '.join(missing) or 'nothing'} "
                                  f"in {run_dir}")  # fmt: skip
        rows = [r for r in rows if str(r["variant"]) in wanted]
    both = [m.strip() for m in two_sided.split(",") if m.strip()]
    derived = derive_thresholds(rows, names, sigmas, both)
    text = thresholds_toml(derived, sigmas, str(run_dir))
    if out is None:
        click.echo(text, nl=False)
    else:
        atomic_write_text(out, text)
        click.echo(f"wrote {out}: {len(derived)} bound(s)")


@cli.command("status")
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
def status_cmd(run_dir: Path) -> None:
    """One line per job of RUN_DIR: pending, running (with its pid), done, failed or
    diverged, its kimg so far of the budget and a started job's pace; then the counts, and
    the CPU time the finished jobs took and the unfinished ones will take at their variant's
    measured rate (or at the pace of a partly trained job of it).
    Reads the folder only (no lock taken), so it may run beside the jobs, from any machine
    that sees the folder."""
    from collections import Counter

    from bench.status import cpu_hours, run_status

    warn_torn(run_dir)
    jobs = run_status(run_dir)
    for job in jobs:
        click.echo(job.line())
    counts = Counter(j.state for j in jobs)
    order = ["done", "running", "pending", "failed", "diverged"]
    order += sorted(set(counts) - set(order))
    click.echo(", ".join(f"{counts[s]} {s}" for s in order if counts[s]) or "no jobs")
    click.echo(cpu_hours(run_dir, jobs).line())
