"""The HTML page of `bench report`: a section per run (its table with job states, the
real-data floor, more metrics, protocols, the table beside published FIDs), the runs ranked
together and their ranking agreement, the summary figures, and each job's sample grids and
interpolation strips, read from the run folders (only files inside them)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd

from bench.runs import TRACKED_COLUMNS
from metrics.keys import headline, secondary
from reports import figures
from reports.cost import COST_NOTE, cost_cells, cost_table
from reports.frame import (
    latest_rows,
    metric_protocols,
    present_metrics,
    ranking_agreement,
    wide_table,
)
from reports.headline import headline_note
from reports.html import Figure, Section, render
from reports.published import INTRO as PUBLISHED_INTRO
from reports.published import PROTOCOL_NOTE, references

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

NEIGHBOURS_NOTE = (
    "Neighbours in the ranking (within each protocol), compared by Welch's two-sided t-test "
    "over their seeds: separated when p < 0.05. With three seeds the test has little power: "
    "not separated means not shown different."
)


def made_on(rows: list) -> str:
    """Which machines made a run's finished rows: the CPU models (or devices) that trained
    them, in session order where a job moved, and that scored them, with the numerics and
    threads per job; '' for a run without such rows. A table computed in pieces on several
    machines says so."""
    done = [r for r in latest_rows(rows) if r.get("status") == "ok"]
    if not done:
        return ""

    def count(c: Counter) -> str:
        return ", ".join(f"{k} ({n} job{'s' if n > 1 else ''})" for k, n in c.most_common())

    where = Counter(
        " then ".join(r.get("train_cpus") or []) if r.get("device", "cpu") == "cpu"
        else str(r.get("device")) for r in done
    )  # fmt: skip
    scored = Counter(str((r.get("cpu") or {}).get("model", "unknown")) for r in done)
    numerics = sorted({str(r.get("precision")) for r in done})
    threads = sorted({str(r.get("threads")) for r in done if r.get("threads") is not None})
    text = f"Made on: trained on {count(where)}; scored on {count(scored)}; {'/'.join(numerics)}"
    return text + (f", {'/'.join(threads)} thread(s) per job." if threads else ".")


def plugin_origins(rows: list[dict[str, Any]]) -> dict[str, str]:
    """Variants of ``rows`` that came from a plugin, with where their code came from."""
    from models.plugins import describe

    return {r["variant"]: describe(r["origin"]) for r in rows if r.get("origin")}


def render_page(
    runs: dict[str, tuple[Path, list]],
    frame: pd.DataFrame,
    summary: pd.DataFrame,
    beside: dict[str, pd.DataFrame],
    floors: dict[str, pd.DataFrame | None],
    groups: list[tuple[list[str], pd.DataFrame, pd.DataFrame]],
    evidence: dict[str, Any],
    logs: dict[str, list[pd.DataFrame]],
    skipped: list[str],
    tops: dict[str, pd.DataFrame] | None = None,
) -> tuple[str, list[Figure], list[str]]:
    """The page, its named summary figures, and the files rows name that were left out;
    ``beside`` holds each run's table beside the published FIDs (empty: no such section),
    ``floors`` each run's real-data floor (None: none measured), ``groups`` the runs ranked
    together (:func:`bench.reports.together`), ``evidence`` each run's
    :class:`bench.reports.RankingEvidence` (None: none), ``logs`` the jobs' logs
    (:func:`job_logs`), ``skipped`` the files already left out reading them and ``tops``
    each run's headline table (:func:`bench.reports.run_headline`; empty or absent: none)."""
    sections = _run_sections(runs, summary, beside, floors, evidence, tops or {})
    sections += _comparison_sections(list(runs), summary, groups)
    grids, strips, nearest = _job_files(runs, skipped)
    figs = _summary_figures(runs, frame, logs)
    sections.append(figs)
    if skipped:
        sections.append(Section("Files left out", paragraphs=[
            "Files that rows name but that lie outside their run folder or cannot be read "
            "(a report embeds only files inside the run folders it was given):", *skipped,
        ]))  # fmt: skip
    sections += [s for s in (grids, strips, nearest) if s.figures]
    title = "fmgan-bench report: " + ", ".join(runs)
    jobs = len(frame.drop_duplicates(["run", "variant", "seed"]))
    page = render(title, sections, subtitle=f"{jobs} jobs")
    return page, [f for f in figs.figures if f.name], skipped


def _run_sections(
    runs: dict[str, tuple[Path, list]],
    summary: pd.DataFrame,
    beside: dict[str, pd.DataFrame],
    floors: dict[str, pd.DataFrame | None],
    evidence: dict[str, Any],
    tops: dict[str, pd.DataFrame],
) -> list[Section]:
    """Per run: its headline table, its results (job states, floor, more metrics, protocols,
    failures, plugin variants), which neighbours differ and the budget that predicts its
    ranking, and, where it has one, its table beside the published FIDs."""
    sections = []
    for run, (_, rows) in runs.items():
        present = present_metrics(summary, run, headline())
        table = _with_status(wide_table(summary, present, run), latest_rows(rows))
        sec = Section(
            f"Results: {run}",
            paragraphs=[
                "Each cell: mean ± std [95% t-interval] over seeds; * marks the best value in "
                "the metric's direction. Protocols below the table.",
            ],
            tables=[("", table)],
        )
        machines = made_on(rows)
        if machines:
            sec.paragraphs.append(machines)
        floor = floors[run]
        if floor is not None:
            sec.paragraphs.append(FLOOR_NOTE)
            sec.tables.insert(0, ("Real-data floor", floor))
        top = tops.get(run)
        if top is not None and not top.empty:
            sec.paragraphs.append(headline_note(top))
            sec.tables.insert(0, ("Headline", top))
        more = present_metrics(summary, run, secondary())
        if more:
            sec.tables.append(("More metrics", wide_table(summary, more, run)))
        cost = cost_table(rows)
        if not cost.empty:
            sec.tables.append(("Cost", cost_cells(cost)))
            sec.paragraphs.append(COST_NOTE)
        protos = metric_protocols(summary, run, present + more)
        if protos:
            sec.tables.append(("Protocols", pd.DataFrame(protos)))
        bad = [r for r in latest_rows(rows) if r.get("status") != "ok"]
        sec.paragraphs += [f"{r['variant']} seed {r['seed']}: {r['status']}" for r in bad]
        sec.paragraphs += [f"{v} is a plugin variant: {o}" for v, o in plugin_origins(rows).items()]
        sections.append(sec)
        sections += _evidence_sections(run, evidence.get(run))
        if not beside[run].empty:
            sections.append(
                Section(
                    f"{run} beside published Fashion-MNIST FIDs",
                    paragraphs=[PUBLISHED_INTRO, PROTOCOL_NOTE],
                    tables=[("", beside[run]), ("Published numbers", references())],
                )
            )
    return sections


def _evidence_sections(run: str, ev: Any) -> list[Section]:
    """The neighbour tests and the budget-vs-ranking table of one run, where it has them."""
    out = []
    if ev is not None and not ev.neighbours.empty:
        table = ev.neighbours.drop(columns="protocol").set_index("better")
        table["p_value"] = table["p_value"].map(lambda p: "–" if pd.isna(p) else f"{p:.3g}")
        table["gap"] = table["gap"].map(lambda g: f"{g:.3g}")
        out.append(Section(f"{run}: which neighbours differ ({ev.metric})",
                           paragraphs=[NEIGHBOURS_NOTE], tables=[("", table)]))  # fmt: skip
    if ev is not None and not ev.by_budget.empty:
        table = ev.by_budget.set_index("kimg").round(3)
        out.append(Section(f"{run}: the budget that predicts its ranking",
                           paragraphs=[ev.budget_sentence()], tables=[("", table)]))  # fmt: skip
    return out


def _comparison_sections(
    names: list[str],
    summary: pd.DataFrame,
    groups: list[tuple[list[str], pd.DataFrame, pd.DataFrame]],
) -> list[Section]:
    """The runs ranked together, and how far each later run ranks like the first."""
    sections = [
        Section(f"Ranked together: {', '.join(labels)}",
                paragraphs=[TOGETHER_NOTE, *([headline_note(top)] if not top.empty else [])],
                tables=[*([("Headline", top)] if not top.empty else []),
                        ("Every headline metric" if not top.empty else "", table)])
        for labels, top, table in groups
    ]  # fmt: skip
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
    return sections


# Each job log the report reads, and the columns it needs (a file without them is damaged).
TABLES = (
    ("losses", ["kimg", "d_loss", "g_loss"]),
    ("tracked", list(TRACKED_COLUMNS[1:])),
)


def job_logs(
    runs: dict[str, tuple[Path, list]], skipped: list[str]
) -> dict[str, list[pd.DataFrame]]:
    """The loss and tracked-metric logs (``losses``, ``tracked``) of every job, each with
    its variant, seed and run; read once for the tables and the page. A file a row names
    outside its folder, or one that cannot be read, goes to ``skipped``."""
    logs: dict[str, list[pd.DataFrame]] = {"losses": [], "tracked": []}
    for run, (folder, rows) in runs.items():
        for r in latest_rows(rows):
            paths = r.get("paths") or {}
            for key, columns in TABLES:
                f = _inside(folder, paths.get(key), skipped)
                if f is None:
                    continue
                try:
                    log = pd.read_csv(f, usecols=columns)
                except (ValueError, OSError) as exc:  # damaged: the report goes on without it
                    skipped.append(f"{f} ({type(exc).__name__}: {str(exc)[:80]})")
                    continue
                logs[key].append(log.assign(variant=r["variant"], seed=r["seed"], run=run))
    return logs


def _job_files(
    runs: dict[str, tuple[Path, list]], skipped: list[str]
) -> tuple[Section, Section, Section]:
    """The sample grids, interpolation strips and nearest-training-image figures of each
    variant's first seed. A file a row names outside its folder goes to ``skipped``."""
    grids = Section("Samples: training progress (seed 0 of each variant)", gallery=True)
    strips = Section("Latent interpolation (8 slerp paths x 10 steps)", gallery=True)
    nearest = Section("Nearest training images", gallery=True, paragraphs=[
        "The first 8 samples of each variant (top row), the nearest training image to each in "
        "the evaluator's feature space (middle) and in pixels (bottom): where a generator "
        "copies, the rows repeat each other; ct_fmnist below -3 says so in numbers.",
    ])  # fmt: skip
    for run, (folder, rows) in runs.items():
        first: dict[str, int] = {}
        for x in rows:
            first[x["variant"]] = min(first.get(x["variant"], x["seed"]), x["seed"])
        for r in latest_rows(rows):
            if r["seed"] != first[r["variant"]]:
                continue
            job = _inside(folder, f"{r['variant']}/seed{r['seed']}", skipped)
            steps = sorted((job / "grids").glob("step*.png")) if job else []
            for g in _spread(steps, 4):
                kimg = g.stem.split("kimg")[-1]
                grids.figures.append(
                    Figure(g.read_bytes(), f"{run} {r['variant']} at {kimg} kimg", pixel=True)
                )
            interpolation = r.get("interpolation") or {}
            strip = _inside(folder, interpolation.get("strip"), skipped)
            if strip is not None:
                changes = interpolation.get("class_changes")
                strips.figures.append(Figure(
                    strip.read_bytes(), f"{run} {r['variant']}: class changes per path {changes}",
                    pixel=True,
                ))  # fmt: skip
            near = _inside(folder, (r.get("nearest") or {}).get("figure"), skipped)
            if near is not None:
                ct = (r.get("metrics") or {}).get("ct_fmnist")
                said = f"C_T {ct:.2f}" if isinstance(ct, int | float) else "C_T n/a"
                nearest.figures.append(
                    Figure(near.read_bytes(), f"{run} {r['variant']}: {said}", pixel=True)
                )
    return grids, strips, nearest


def _summary_figures(
    runs: dict[str, tuple[Path, list]],
    frame: pd.DataFrame,
    logs: dict[str, list[pd.DataFrame]],
) -> Section:
    """The gallery of summary figures (each named, so it is also written as a PNG)."""
    figs = Section("Metrics per variant", gallery=True)

    def add(png: bytes | None, caption: str, name: str) -> None:
        if png:
            figs.figures.append(Figure(png, caption, name=name))

    for m in [m for m in headline() if m in set(frame["metric"].dropna())]:
        add(
            figures.metric_bars(frame, m),
            f"{m}: bars are seed means, error bars 95% CI, dots seeds",
            m,
        )
    add(figures.is_vs_fid(frame), "IS(fmnist) against FID(fmnist), one point per seed", "is_vs_fid")
    add(
        figures.capacity_study(frame),
        "dcgan vs dcgan-small (seed 000's capacity study)",
        "capacity",
    )
    per_class = [
        {"variant": r["variant"], "seed": r["seed"], "class_id": int(c), "fid": v}
        for _, rows in runs.values()
        for r in latest_rows(rows)
        for c, v in _per_class_fid(r).items()
    ]
    add(figures.per_class_heatmap(pd.DataFrame(per_class)),
        "per-class FID of conditional variants (mean over seeds)", "per_class")  # fmt: skip
    if logs["tracked"]:
        n = {(r.get("tracked") or {}).get("samples") for _, rows in runs.values() for r in rows}
        n.discard(None)
        apart = figures.protocol_groups(frame, "fid_fmnist")[1]
        add(figures.metric_vs_kimg(pd.concat(logs["tracked"], ignore_index=True), apart),
            "FID and IS (fmnist) of G_ema during training, "
            f"{'/'.join(str(x) for x in sorted(n))} samples per point vs the test split; "
            "bands: 95% CI over seeds", "metric_vs_kimg")  # fmt: skip
    if logs["losses"]:
        add(figures.loss_curves(pd.concat(logs["losses"])),
            "G and D losses against kimg (seed 0)", "loss_curves")  # fmt: skip
    return figs


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


def _spread(items: list[Path], k: int) -> list[Path]:
    """Up to ``k`` items evenly spread, first and last included."""
    if len(items) <= k:
        return items
    idx = sorted({round(i * (len(items) - 1) / (k - 1)) for i in range(k)})
    return [items[i] for i in idx]
