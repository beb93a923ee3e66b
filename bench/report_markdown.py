"""`bench report`'s tables.md: every run's headline, floor, results, cost, protocols,
ranking evidence and published comparison, then the runs ranked together and side by side.
The HTML page (:mod:`bench.report_page`) shows the same tables; both derive them from the
objects :func:`bench.reports.write_report` computes once."""

from __future__ import annotations

from typing import Any

import pandas as pd

from bench.report_page import FLOOR_NOTE, NEIGHBOURS_NOTE, TOGETHER_NOTE, made_on, plugin_origins
from metrics.keys import headline, secondary
from reports.cost import COST_NOTE, cost_cells, cost_table
from reports.frame import (
    compare_runs,
    metric_protocols,
    present_metrics,
    ranking_agreement,
    to_markdown,
    wide_table,
)
from reports.headline import headline_note
from reports.published import INTRO as PUBLISHED_INTRO
from reports.published import PROTOCOL_NOTE, references


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


def _evidence_markdown(ev: Any) -> str:
    """Which neighbours differ, and the budget that predicts the ranking ('' for neither)."""
    if ev is None:
        return ""
    parts = []
    if not ev.neighbours.empty:
        parts.append(f"### Which neighbours differ (`{ev.metric}`)\n\n{NEIGHBOURS_NOTE}\n\n")
        parts.append("| better | worse | gap | p-value | separated |\n|---|---|---|---|---|\n")
        for r in ev.neighbours.itertuples():
            p = "–" if pd.isna(r.p_value) else f"{r.p_value:.3g}"
            sep = "yes" if r.separated else "no"
            parts.append(f"| `{r.better}` | `{r.worse}` | {r.gap:.3g} | {p} | {sep} |\n")
        parts.append("\n")
    if not ev.by_budget.empty:
        parts.append(f"### The budget that predicts this ranking\n\n{ev.budget_sentence()}\n\n")
        same = ev.same_space  # the columns against the final FID(fmnist), if any
        head = f"| kimg | variants | Kendall tau vs `{ev.metric}` | p-value |"
        parts.append(head + (" tau vs final FID(fmnist) | p-value |" if same else "") + "\n")
        parts.append("|---|---|---|---|" + ("---|---|" if same else "") + "\n")
        for r in ev.by_budget.to_dict("records"):
            cells = (
                f"| {r['kimg']:g} | {r['variants']} | {r['kendall_tau']:.3f} | {r['p_value']:.3g} |"
            )
            if same:
                tau, p = r[same[0]], r[same[1]]
                cells += " – | – |" if pd.isna(tau) else f" {tau:.3f} | {p:.3g} |"
            parts.append(cells + "\n")
        parts.append("\n")
    return "".join(parts)


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


def tables_markdown(
    runs: dict[str, list],
    frame: Any,
    summary: Any,
    beside: dict[str, Any],
    floors: dict[str, Any],
    groups: list[tuple[list[str], Any, Any]],
    evidence: dict[str, Any],
    tops: dict[str, Any],
) -> str:
    """The Markdown tables of every run (label -> rows), from the tidy frame and its summary,
    with each run's real-data floor above its rows, which neighbours its seeds separate and
    the budget its curves predict the ranking from (``evidence``), and its table beside the
    published FIDs where it has them; each run's headline table (``tops``) comes first."""
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
        machines = made_on(runs[run])
        if machines:
            parts.append(machines + "\n\n")
        cost, top = cost_table(runs[run]), tops[run]
        if not top.empty:
            parts.append(f"### Headline\n\n{headline_note(top)}\n\n{to_markdown(top)}\n")
            parts.append("### All metrics\n\n")
        if floors[run] is not None:
            parts.append(f"{FLOOR_NOTE}\n\n")
            parts.append(to_markdown(floors[run], index_name="floor"))
            parts.append("\n")
        parts.append(to_markdown(table))
        more = present_metrics(summary, run, secondary())
        if more:
            parts.append("\nMore metrics:\n\n")
            parts.append(to_markdown(wide_table(summary, more, run)))
        if not cost.empty:
            parts.append(f"\nCost:\n\n{COST_NOTE}\n\n")
            parts.append(to_markdown(cost_cells(cost)))
        bad = sub[sub["status"] != "ok"].drop_duplicates(["variant", "seed"])
        for r in bad.itertuples():
            parts.append(f"- `{r.variant}` seed {r.seed}: {r.status}\n")
        for variant, origin in plugin_origins(runs[run]).items():
            parts.append(f"- `{variant}` is a plugin variant: {origin}\n")
        parts.append("\nProtocols:\n")
        for p in metric_protocols(summary, run, present + more):
            parts.append(f"- `{p['metric']}` ({p['direction']}): {p['protocol']}\n")
        parts.append("\n")
        parts.append(_evidence_markdown(evidence[run]))
        parts.append(_published_markdown(beside[run]))
    if len(runs) > 1:
        for labels, top, table in groups:
            parts.append(f"## Ranked together: {', '.join(labels)}\n\n{TOGETHER_NOTE}\n\n")
            if not top.empty:
                parts.append(
                    f"{headline_note(top)}\n\n{to_markdown(top)}\nEvery headline metric:\n\n"
                )
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
