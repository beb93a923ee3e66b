"""A run's headline table: one row per variant, best first, with what a reader compares
before anything else: the ranking FID with its spread and 95% interval over seeds, the raw
G's FID where the run scored it, KID, recall and coverage in the same feature space, IS, what
a job cost, and the published number of the variant's loss family. `bench report` puts it
first in each run's section; the README's results table is this table of the committed run.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd

from reports.frame import cell, latest_rows, protocol_groups

# Per ranking FID: the metrics of the same feature space, in column order (label -> key).
FAMILIES: dict[str, dict[str, str]] = {
    "fid_inception": {
        "FID(inception)": "fid_inception",
        "KID(inception)": "kid_inception",
        "recall(inception)": "recall_inception",
        "coverage(inception)": "coverage_inception",
        "IS(fmnist)": "is_fmnist",
    },
    "fid_fmnist": {
        "FID(fmnist)": "fid_fmnist",
        "KID(fmnist)": "kid_fmnist",
        "recall(fmnist)": "recall_fmnist",
        "coverage(fmnist)": "coverage_fmnist",
        "IS(fmnist)": "is_fmnist",
    },
}

FLOOR_ROW = "real data (floor)"


def headline_note(table: pd.DataFrame) -> str:
    """What the cells of a :func:`headline_table` are (its optional columns only when it has
    them)."""
    parts = [
        "Best first by the run's FID; the first metric column: mean ± std [95% t-interval] "
        "over seeds, the others mean ± std; * best in the metric's direction."
    ]
    if table["seeds"].astype(str).str.contains("(", regex=False).any():
        parts.append("seeds: the finished seeds, in brackets the jobs that ended without a "
                     "result (diverged or failed).")  # fmt: skip
    if FLOOR_ROW in table.index:
        parts.append("The first row is the real-data floor: training images scored as samples "
                     "(seeds: draws).")  # fmt: skip
    if "raw G" in table.columns:
        parts.append("raw G: the raw generator's FID (the other columns score G_ema).")
    parts.append("train h and scoring min: wall time per job (see Cost).")
    if "published" in table.columns:
        parts.append("published: the published model of the variant's loss family under the "
                     "same protocol, mean ± std as the paper gives it.")  # fmt: skip
    return " ".join(parts)


def headline_table(
    summary: pd.DataFrame,
    run: str,
    metric: str,
    beside: pd.DataFrame | None = None,
    cost: pd.DataFrame | None = None,
    floor: pd.DataFrame | None = None,
    unfinished: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """The headline table of ``run`` ranked by ``metric`` (a key of :data:`FAMILIES`), as
    display strings indexed by variant.

    Args:
        summary: :func:`reports.frame.summarize`'s frame.
        run: the run's label in ``summary``.
        metric: the FID the run is ranked by (``fid_inception`` or ``fid_fmnist``).
        beside: :func:`reports.published.comparison`'s table of the run (columns ``raw G``,
            ``published``, ``published FID``), or None / empty.
        cost: :func:`reports.cost.cost_table` of the run's rows, or None / empty.
        floor: the run's real-data floor summarized over its draws (run ``floor``; its
            ``seeds`` column counts draws), or None: a first row, :data:`FLOOR_ROW`, so a
            reader sees how far each variant is from real data.
        unfinished: variant -> its jobs that ended without a result (e.g. ``"1 diverged"``,
            :func:`unfinished_jobs`): said beside its seeds, so a recipe that diverges on
            some seeds is not read as reliable; a variant without any result gets a row
            below the ranked ones that says so, instead of vanishing from the table.

    Variants scored under another protocol (:func:`reports.frame.protocol_groups`) come last,
    named in ``attrs["apart"]`` as in :func:`reports.frame.wide_table`. Empty when the run
    has no value of ``metric``.
    """
    columns = FAMILIES[metric]
    s = summary[(summary["run"] == run) & (summary["metric"].isin(columns.values()))]
    ranked = s[s["metric"] == metric].sort_values("mean", ascending=True, kind="stable")
    if ranked.empty:
        return pd.DataFrame()
    main, others, against = protocol_groups(ranked, metric)
    order = [v for v in ranked["variant"] if v in main] + [
        v for v in ranked["variant"] if v in others
    ]
    by = s.set_index(["variant", "metric"])
    beside = beside if beside is not None and not beside.empty else pd.DataFrame()
    cost = cost if cost is not None and not cost.empty else pd.DataFrame()
    unfinished = unfinished or {}
    records = []
    for v in order:
        seeds = str(int(by.loc[(v, metric), "n"]))
        row: dict[str, Any] = {"seeds": seeds + (f" (+{unfinished[v]})" if v in unfinished else "")}
        for label, key in columns.items():
            have = (v, key) in by.index
            row[label] = cell(_row(by.loc[(v, key)]), interval=key == metric) if have else "–"
            if key == metric and "raw G" in beside.columns:
                row["raw G"] = _text(beside, v, "raw G")
        row["train h"] = _number(cost, v, "train h", 2)
        row["scoring min"] = _number(cost, v, "scoring min", 0)
        if "published" in beside.columns:
            model, fid = _text(beside, v, "published"), _text(beside, v, "published FID")
            row["published"] = "–" if model == "–" else f"{model}: {fid}"
        records.append({"variant": v, **row})
    for v in (v for v in unfinished if v not in order):  # no result at all: listed, not ranked
        records.append({"variant": v, "seeds": f"0 ({unfinished[v]})"})
    if floor is not None and not floor.empty:
        f = floor.set_index(["variant", "metric"])
        draws = f.loc[f.index.get_level_values("metric") == metric, "n"]
        real = {"seeds": int(draws.iloc[0]) if len(draws) else 0}
        for label, key in columns.items():
            have = any(m == key for _, m in f.index)
            value = _row(f.xs(key, level="metric").iloc[0]) if have else None
            real[label] = cell(value, interval=key == metric) if value is not None else "–"
        records.insert(0, {"variant": FLOOR_ROW, **real})
    labels = list(columns)
    order = ["seeds", labels[0], *(["raw G"] if "raw G" in beside.columns else []), *labels[1:]]
    order += ["train h", "scoring min", *(["published"] if "published" in beside.columns else [])]
    table = pd.DataFrame.from_records(records).set_index("variant").reindex(columns=order)
    table = table.fillna("–")
    table.attrs["apart"] = dict.fromkeys(others, against)
    return table


def unfinished_jobs(rows: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """Variant -> its latest jobs that ended without a result, counted by state (``"1
    diverged, 1 failed"``); variants whose every job is ok are left out."""
    counts: dict[str, Counter] = {}
    for r in latest_rows(rows):
        if r.get("status") != "ok":
            counts.setdefault(str(r["variant"]), Counter())[str(r.get("status"))] += 1
    return {v: ", ".join(f"{n} {s}" for s, n in sorted(c.items())) for v, c in counts.items()}


def _row(series: pd.Series) -> SimpleNamespace:
    """A summary row as the attribute object :func:`reports.frame.cell` reads."""
    return SimpleNamespace(**series.to_dict())


def _text(table: pd.DataFrame, variant: str, column: str) -> str:
    if variant not in table.index or column not in table.columns:
        return "–"
    return str(table.loc[variant, column])


def _number(table: pd.DataFrame, variant: str, column: str, digits: int) -> str:
    if variant not in table.index or column not in table.columns:
        return "–"
    value = table.loc[variant, column]
    return "–" if value is None or np.isnan(value) else f"{value:,.{digits}f}"
