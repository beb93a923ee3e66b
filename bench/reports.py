"""`bench report` glue: read run folders, hand their rows to the reports package, write files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.errors import BenchError
from bench.floor import read_floor
from bench.report_page import FLOOR_NOTE, TOGETHER_NOTE, plugin_origins, render_page
from bench.runs import RunFolder
from metrics.common import atomic_path
from metrics.keys import headline, secondary
from reports.frame import (
    compare_runs,
    latest_rows,
    metric_protocols,
    present_metrics,
    ranking_agreement,
    summarize,
    tidy,
    to_markdown,
    wide_table,
)
from reports.published import INTRO as PUBLISHED_INTRO
from reports.published import PROTOCOL_NOTE, matches_protocol, references
from reports.published import comparison as published_comparison


def run_label(path: Path, taken: set[str]) -> str:
    """A short unique label for a run folder (its name, disambiguated by its parent)."""
    label = path.resolve().name
    if label in taken:
        label = f"{path.resolve().parent.name}/{label}"
    return label


def read_runs(run_dirs: tuple[Path, ...] | list[Path]) -> dict[str, tuple[Path, list]]:
    """Label -> (folder, rows) for every run folder."""
    runs: dict[str, tuple[Path, list]] = {}
    for d in run_dirs:
        rows = RunFolder(d).results()
        if not rows:
            raise BenchError(f"{d}: results.jsonl has no rows yet")
        runs[run_label(d, set(runs))] = (d, rows)
    return runs


def html_path(out: Path) -> Path:
    """The report page for ``--out``: the path itself when it names an .html file, else
    report.html inside that folder."""
    return out if out.suffix.lower() == ".html" else out / "report.html"


def write_report(run_dirs: tuple[Path, ...] | list[Path], out: Path) -> tuple[str, Path]:
    """The self-contained HTML report and its tables (tidy.csv, summary.csv, tables.md).

    ``out`` is the HTML file when it ends in ``.html`` (tables beside it), else a folder
    that receives report.html and the tables. The summary figures are also written as PNG
    files under ``figures/`` beside it, for a README or a paper. Returns the Markdown and
    the HTML path.
    """
    html = html_path(out)
    runs = read_runs(run_dirs)
    rows_by_run = {k: rows for k, (_, rows) in runs.items()}
    frame = tidy(rows_by_run)
    summary = summarize(frame)
    beside = {
        run: published_comparison(frame, summary, run, _protocol_losses(folder, rows))
        for run, (folder, rows) in runs.items()
    }
    floors = {run: floor_table(folder) for run, (folder, _) in runs.items()}
    groups = together(rows_by_run) if len(runs) > 1 else []
    markdown = _tables(rows_by_run, frame, summary, beside, floors, groups)
    page, figures, skipped = render_page(runs, frame, summary, beside, floors, groups)
    if skipped:  # said in the tables too, not only on the page
        markdown += "## Files left out\n\n" + "".join(f"- {x}\n" for x in skipped)
    out_dir = html.parent
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, write in (
        ("tidy.csv", lambda p: frame.to_csv(p, index=False)),
        ("summary.csv", lambda p: summary.to_csv(p, index=False)),
        ("tables.md", lambda p: Path(p).write_text(markdown, encoding="utf-8")),
    ):
        with atomic_path(out_dir / name) as tmp:
            write(tmp)
    for fig in figures:
        with atomic_path(out_dir / "figures" / f"{fig.name}.png") as tmp:
            tmp.write_bytes(fig.png)
    with atomic_path(html) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return markdown, html


def floor_table(folder: Path) -> Any:
    """The run's real-data floor (``bench floor``) as a one-row table of its headline
    metrics, mean ± std over the draws; None when the folder has no floor rows."""
    rows = [r for r in read_floor(folder) if r.get("status") == "ok"]
    if not rows:
        return None
    summary = summarize(tidy({"floor": rows})).assign(best=False)  # the floor is not ranked
    return wide_table(summary, present_metrics(summary, "floor", headline()), "floor")


def together(runs: dict[str, list]) -> list[tuple[list[str], Any]]:
    """Runs made under the same profile and budget, ranked as one table: a user's run beside
    committed baselines (``bench report runs/mine reports/results/lucic/run``). A variant
    present in several of them is labelled ``variant (run)``. Returns (run labels, table) per
    group of two or more runs; ranks and best marks stay per protocol, as everywhere."""
    groups: dict[tuple, list[str]] = {}
    for run, rows in runs.items():
        keys = {(r.get("profile"), r.get("kimg_budget")) for r in latest_rows(rows)}
        if len(keys) == 1:
            groups.setdefault(keys.pop(), []).append(run)
    out = []
    for labels in groups.values():
        if len(labels) < 2:
            continue
        seen: dict[str, int] = {}
        for run in labels:
            for v in {str(r["variant"]) for r in runs[run]}:
                seen[v] = seen.get(v, 0) + 1
        merged = [
            {**r, "variant": r["variant"] if seen[str(r["variant"])] == 1
             else f"{r['variant']} ({run})"}
            for run in labels for r in latest_rows(runs[run])
        ]  # fmt: skip
        summary = summarize(tidy({"together": merged}))
        out.append((labels, wide_table(summary, present_metrics(summary, "together", headline()),
                                       "together")))  # fmt: skip
    return out


def _agreement_markdown(summary: Any, runs: list[str]) -> str:
    """How far each later run ranks the variants like the first one (Kendall's tau)."""
    parts = []
    for other in runs[1:]:
        table = ranking_agreement(summary, runs[0], other, headline())
        if table.empty:
            continue
        parts.append(
            f"## Ranking agreement: {runs[0]} vs {other}\n\nKendall's tau-b between the two "
            "runs' variant means (1: the same order, -1: reversed).\n\n"
            "| metric | variants | Kendall tau | p-value |\n|---|---|---|---|\n"
        )
        for r in table.itertuples():
            cells = f"{r.variants} | {r.kendall_tau:.3f} | {r.p_value:.3g}"
            parts.append(f"| `{r.metric}` | {cells} |\n")
        parts.append("\n")
    return "".join(parts)


def _protocol_losses(folder: Path, rows: list) -> dict[str, str]:
    """Variant -> loss for the variants of one run whose every latest row made
    FID(inception) under the Lucic et al. protocol's sample sizes. The loss is the one
    config.json records for the run (a --set loss=... included), else the registry's."""
    from models.registry import UnknownVariantError, get_variant
    from reports.frame import latest_rows

    def registered_loss(v: str) -> str | None:
        try:
            return get_variant(v).loss
        except UnknownVariantError:
            return None

    try:
        config = RunFolder(folder).read_config() or {}
    except BenchError:  # a damaged config.json: fall back to the registry
        config = {}
    recipes = config.get("variants") or {}
    ok: dict[str, bool] = {}
    for r in latest_rows(rows):
        v = str(r["variant"])
        ok[v] = ok.get(v, True) and r.get("status") == "ok" and matches_protocol(r)
    losses = {}
    for v, good in ok.items():
        loss = (recipes.get(v) or {}).get("loss") or registered_loss(v)
        if good and isinstance(loss, str):
            losses[v] = loss
    return losses


def _published_markdown(beside: Any) -> str:
    """One run's table beside the published FIDs as Markdown ('' when it is empty)."""
    if beside.empty:
        return ""
    return (
        f"### Beside published Fashion-MNIST FIDs\n\n{PUBLISHED_INTRO}\n\n"
        + to_markdown(beside)
        + "\n"
        + to_markdown(references(), index_name="published model")
        + f"\n{PROTOCOL_NOTE}\n\n"
    )


def _tables(
    runs: dict[str, list],
    frame: Any,
    summary: Any,
    beside: dict[str, Any],
    floors: dict[str, Any],
    groups: list[tuple[list[str], Any]],
) -> str:
    """The Markdown tables of every run (label -> rows), from the tidy frame and its summary,
    with each run's real-data floor above its rows and its table beside the published FIDs
    where it has them."""
    parts = []
    for run in runs:
        present = present_metrics(summary, run, headline())
        table = wide_table(summary, present, run)
        sub = frame[frame["run"] == run]
        seeds = sub.groupby("variant")["seed"].nunique()
        counts = ", ".join(f"{v} {int(n)}" for v, n in seeds.items())
        parts.append(
            f"## {run}\n\nSeeds per variant: {counts}. Cells: mean ± std [95% t-interval] "
            "over seeds; * best in the metric's direction.\n\n"
        )
        if floors[run] is not None:
            parts.append(f"{FLOOR_NOTE}\n\n")
            parts.append(to_markdown(floors[run], index_name="floor"))
            parts.append("\n")
        parts.append(to_markdown(table))
        more = present_metrics(summary, run, secondary())
        if more:
            parts.append("\nMore metrics:\n\n")
            parts.append(to_markdown(wide_table(summary, more, run)))
        bad = sub[sub["status"] != "ok"].drop_duplicates(["variant", "seed"])
        for r in bad.itertuples():
            parts.append(f"- `{r.variant}` seed {r.seed}: {r.status}\n")
        for variant, origin in plugin_origins(runs[run]).items():
            parts.append(f"- `{variant}` is a plugin variant: {origin}\n")
        parts.append("\nProtocols:\n")
        for p in metric_protocols(summary, run, present + more):
            parts.append(f"- `{p['metric']}` ({p['direction']}): {p['protocol']}\n")
        parts.append("\n")
        parts.append(_published_markdown(beside[run]))
    if len(runs) > 1:
        for labels, table in groups:
            parts.append(f"## Ranked together: {', '.join(labels)}\n\n{TOGETHER_NOTE}\n\n")
            parts.append(to_markdown(table))
            parts.append("\n")
        parts.append(_agreement_markdown(summary, list(runs)))
        parts.append("## Runs side by side\n\n")
        for variant in dict.fromkeys(summary["variant"]):
            present = [
                m
                for m in headline()
                if m in set(summary.loc[summary["variant"] == variant, "metric"])
            ]
            parts.append(f"### `{variant}`\n\n")
            parts.append(to_markdown(compare_runs(summary, variant, present), index_name="run"))
            parts.append("\n")
    return "".join(parts)
