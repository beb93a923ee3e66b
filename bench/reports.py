"""`bench report` glue: read run folders, hand their rows to the reports package, write files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.errors import BenchError
from bench.floor import read_floor
from bench.runs import RunFolder
from metrics.common import atomic_path
from metrics.keys import headline, ranking, secondary
from reports.frame import (
    compare_runs,
    latest_rows,
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
    page, figures, skipped = _html(runs, frame, summary, beside, floors, groups)
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


TOGETHER_NOTE = (
    "Runs made under the same profile and budget, ranked as one table (e.g. your run beside "
    "committed baselines, which are not retrained); a variant present in several runs is "
    "labelled with its run; ranks and * are per protocol."
)

FLOOR_NOTE = (
    "Real-data floor: draws of real training images scored as if they were samples, with "
    "this run's protocol (`bench floor`): what a perfect generator would score. Mean ± std "
    "[95% t-interval] over the draws."
)


def floor_table(folder: Path) -> Any:
    """The run's real-data floor (``bench floor``) as a one-row table of its headline
    metrics, mean ± std over the draws; None when the folder has no floor rows."""
    rows = [r for r in read_floor(folder) if r.get("status") == "ok"]
    if not rows:
        return None
    summary = summarize(tidy({"floor": rows})).assign(best=False)  # the floor is not ranked
    return wide_table(summary, _present(summary, "floor", headline()), "floor")


def _html(
    runs: dict[str, tuple[Path, list]],
    frame: Any,
    summary: Any,
    beside: dict[str, Any],
    floors: dict[str, Any],
    groups: list[tuple[list[str], Any]],
) -> tuple[str, list, list[str]]:
    """The page, its named summary figures, and the files rows name that were left out;
    ``beside`` holds each run's table beside the published FIDs (empty: no such section),
    ``floors`` each run's real-data floor (None: none measured), ``groups`` the runs ranked
    together (:func:`together`)."""
    import pandas as pd

    from reports import figures
    from reports.frame import latest_rows
    from reports.html import Figure, Section, render

    sections = []
    for run, (_, rows) in runs.items():
        present = _present(summary, run, headline())
        table = _with_status(wide_table(summary, present, run), latest_rows(rows))
        sec = Section(
            f"Results: {run}",
            paragraphs=[
                "Each cell: mean ± std [95% t-interval] over seeds; * marks the best value in "
                "the metric's direction. Protocols below the table.",
            ],
            tables=[("", table)],
        )
        if floors[run] is not None:
            sec.paragraphs.append(FLOOR_NOTE)
            sec.tables.insert(0, ("Real-data floor", floors[run]))
        more = _present(summary, run, secondary())
        if more:
            sec.tables.append(("More metrics", wide_table(summary, more, run)))
        protos = _metric_protocols(summary, run, present + more)
        if protos:
            sec.tables.append(("Protocols", pd.DataFrame(protos)))
        bad = [r for r in latest_rows(rows) if r.get("status") != "ok"]
        sec.paragraphs += [f"{r['variant']} seed {r['seed']}: {r['status']}" for r in bad]
        sec.paragraphs += [f"{v} is a plugin variant: {o}" for v, o in _plugins(rows).items()]
        sections.append(sec)
        if not beside[run].empty:
            sections.append(
                Section(
                    f"{run} beside published Fashion-MNIST FIDs",
                    paragraphs=[PUBLISHED_INTRO, PROTOCOL_NOTE],
                    tables=[("", beside[run]), ("Published numbers", references())],
                )
            )
    for labels, table in groups:
        sections.append(Section(f"Ranked together: {', '.join(labels)}",
                                paragraphs=[TOGETHER_NOTE], tables=[("", table)]))  # fmt: skip
    names = list(runs)
    for other in names[1:]:
        agreement = ranking_agreement(summary, names[0], other, headline())
        if not agreement.empty:
            sections.append(
                Section(
                    f"Ranking agreement: {names[0]} vs {other}",
                    paragraphs=["Kendall's tau-b of the variant means (1: same order)."],
                    tables=[("", agreement.set_index("metric").round(3))],
                )
            )
    figs = Section("Metrics per variant", gallery=True)
    for m in [m for m in headline() if m in set(frame["metric"].dropna())]:
        png = figures.metric_bars(frame, m)
        if png:
            figs.figures.append(
                Figure(png, f"{m}: bars are seed means, error bars 95% CI, dots seeds", name=m)
            )
    png = figures.is_vs_fid(frame)
    if png:
        figs.figures.append(
            Figure(png, "IS(fmnist) against FID(fmnist), one point per seed", name="is_vs_fid")
        )
    png = figures.capacity_study(frame)
    if png:
        figs.figures.append(
            Figure(png, "dcgan vs dcgan-small (seed 000's capacity study)", name="capacity")
        )
    sections.append(figs)
    losses, tracked = [], []
    grids = Section("Samples: training progress (seed 0 of each variant)", gallery=True)
    strips = Section("Latent interpolation (8 slerp paths x 10 steps)", gallery=True)
    skipped: list[str] = []
    for run, (folder, rows) in runs.items():
        for r in latest_rows(rows):
            paths = r.get("paths") or {}
            for key, columns, into in (
                ("losses", ["kimg", "d_loss", "g_loss"], losses), ("tracked", None, tracked),
            ):  # fmt: skip
                f = _inside(folder, paths.get(key), skipped)
                if f is None:
                    continue
                try:
                    log = pd.read_csv(f, usecols=columns)
                except (ValueError, OSError) as exc:  # damaged: the report goes on without it
                    skipped.append(f"{f} ({type(exc).__name__}: {str(exc)[:80]})")
                    continue
                into.append(log.assign(variant=r["variant"], seed=r["seed"], run=run))
            if r["seed"] != min(x["seed"] for x in rows if x["variant"] == r["variant"]):
                continue
            job = _inside(folder, f"{r['variant']}/seed{r['seed']}", skipped)
            steps = sorted((job / "grids").glob("step*.png")) if job else []
            for g in _spread(steps, 4):
                kimg = g.stem.split("kimg")[-1]
                grids.figures.append(
                    Figure(g.read_bytes(), f"{run} {r['variant']} at {kimg} kimg", pixel=True)
                )
            strip = _inside(folder, (r.get("interpolation") or {}).get("strip"), skipped)
            if strip is not None:
                changes = (r.get("interpolation") or {}).get("class_changes")
                strips.figures.append(
                    Figure(
                        strip.read_bytes(),
                        f"{run} {r['variant']}: class changes per path {changes}",
                        pixel=True,
                    )
                )
    if skipped:
        sections.append(Section("Files left out", paragraphs=[
            "Files that rows name but that lie outside their run folder or cannot be read "
            "(a report embeds only files inside the run folders it was given):", *skipped,
        ]))  # fmt: skip
    per_class = [
        {"variant": r["variant"], "seed": r["seed"], "class_id": int(c), "fid": v}
        for _, rows in runs.values()
        for r in latest_rows(rows)
        for c, v in _per_class_fid(r).items()
    ]
    png = figures.per_class_heatmap(pd.DataFrame(per_class))
    if png:
        figs.figures.append(
            Figure(png, "per-class FID of conditional variants (mean over seeds)", name="per_class")
        )
    if tracked:
        png = figures.metric_vs_kimg(pd.concat(tracked, ignore_index=True))
        if png:
            n = {(r.get("tracked") or {}).get("samples") for _, rows in runs.values() for r in rows}
            n.discard(None)
            figs.figures.append(
                Figure(
                    png,
                    "FID and IS (fmnist) of G_ema during training, "
                    f"{'/'.join(str(x) for x in sorted(n))} samples per point vs the test split; "
                    "bands: 95% CI over seeds",
                    name="metric_vs_kimg",
                )
            )
    if losses:
        png = figures.loss_curves(pd.concat(losses))
        if png:
            figs.figures.append(
                Figure(png, "G and D losses against kimg (seed 0)", name="loss_curves")
            )
    sections += [s for s in (grids, strips) if s.figures]
    title = "fmgan-bench report: " + ", ".join(runs)
    page = render(
        title, sections, subtitle=f"{len(frame.drop_duplicates(['run', 'variant', 'seed']))} jobs"
    )
    return page, [f for f in figs.figures if f.name], skipped


def _per_class_fid(row: dict) -> dict:
    """class id -> FID(fmnist) of one conditional row (empty for others)."""
    proto = (row.get("protocol") or {}).get("fmnist") or {}
    return proto.get("fid_fmnist_per_class") or {}


def _with_status(table: Any, rows: list) -> Any:
    """The results table with a first column of job states per variant ("ok 3/3"), and a
    row for variants that have no metrics (diverged or failed everywhere)."""
    from collections import Counter

    states: dict[str, Counter] = {}
    for r in rows:
        states.setdefault(str(r["variant"]), Counter())[str(r.get("status"))] += 1
    table = table.reindex(list(dict.fromkeys([*table.index, *states])))
    jobs = [
        ", ".join(f"{k} {n}/{sum(states[v].values())}" for k, n in sorted(states[v].items()))
        for v in table.index
    ]
    table.insert(0, "jobs", jobs)
    table.columns.name = None  # one header row in HTML
    return table


def _present(summary: Any, run: str, metrics: list[str]) -> list[str]:
    """The ``metrics`` that ``run`` has values for, in the given order."""
    have = set(summary.loc[summary["run"] == run, "metric"])
    return [m for m in metrics if m in have]


def _metric_protocols(summary: Any, run: str, metrics: list[str]) -> list[dict[str, str]]:
    """Per metric of ``run``: its direction and the protocol(s) its values were made under."""
    out = []
    for m in metrics:
        proto = summary.loc[(summary["run"] == run) & (summary["metric"] == m), "protocol"]
        out.append(
            {"metric": m, "direction": ranking(m), "protocol": "; ".join(sorted(set(proto)))}
        )
    return out


def _inside(folder: Path, rel: Any, skipped: list[str]) -> Path | None:
    """``folder / rel`` when it is an existing file or folder inside ``folder``; a path that
    leads out of it (absolute, ``..``, a link) is recorded in ``skipped`` and not read."""
    if not rel or not isinstance(rel, str):
        return None
    path = (folder / rel).resolve()
    if not path.is_relative_to(folder.resolve()):
        skipped.append(f"{rel} (named by a row of {folder}; outside it)")
        return None
    return path if path.exists() else None


def _plugins(rows: list[dict[str, Any]]) -> dict[str, str]:
    """Variants of ``rows`` that came from a plugin, with where their code came from."""
    from models.plugins import describe

    return {r["variant"]: describe(r["origin"]) for r in rows if r.get("origin")}


def _spread(items: list[Path], k: int) -> list[Path]:
    """Up to ``k`` items evenly spread, first and last included."""
    if len(items) <= k:
        return items
    idx = sorted({round(i * (len(items) - 1) / (k - 1)) for i in range(k)})
    return [items[i] for i in idx]


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
        out.append((labels, wide_table(summary, _present(summary, "together", headline()),
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
        present = _present(summary, run, headline())
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
        more = _present(summary, run, secondary())
        if more:
            parts.append("\nMore metrics:\n\n")
            parts.append(to_markdown(wide_table(summary, more, run)))
        bad = sub[sub["status"] != "ok"].drop_duplicates(["variant", "seed"])
        for r in bad.itertuples():
            parts.append(f"- `{r.variant}` seed {r.seed}: {r.status}\n")
        for variant, origin in _plugins(runs[run]).items():
            parts.append(f"- `{variant}` is a plugin variant: {origin}\n")
        parts.append("\nProtocols:\n")
        for p in _metric_protocols(summary, run, present + more):
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
