"""What a run's jobs cost: per variant the training rate and hours, the scoring minutes and
the CPU-hours, from the rows' job facts (the Cost table of `bench report`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from reports.frame import latest_rows
from reports.rows import job_cpu_seconds

COST_NOTE = (
    "Cost per job, mean over the variant's finished seeds: training images per second and "
    "training wall hours (the tracked curve points, checkpoints and grids between steps are "
    "not counted), scoring wall minutes (the raw G's scoring included), and process CPU "
    "hours of training and scoring; the last column sums the variant's jobs. Wall time "
    "depends on the CPU and on what shared it, CPU time on the CPU (see Made on); a job "
    "without a CPU time on record shows –."
)


def cost_table(rows: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """What each variant's finished jobs cost (:data:`COST_NOTE`), one run's ``rows``: per
    variant the seeds, mean kimg, training img/s, training h, scoring min, CPU-h per job and
    CPU-h of all its jobs (– when one of them has no CPU time on record), and a last row
    ``all jobs`` with the run's jobs and the CPU-h of those that have one (as `bench status`
    counts them). Empty when no job finished ``ok``. Numbers: the caller formats them."""
    cols = ["jobs", "kimg", "img/s", "train h", "scoring min", "CPU-h per job", "CPU-h"]
    per: dict[str, list[dict[str, float]]] = {}
    for r in latest_rows(rows):
        if r.get("status") != "ok":
            continue
        raw = r.get("raw_g") or {}
        seconds = job_cpu_seconds(r)
        cpu = np.nan if seconds is None else sum(seconds) / 3600
        scoring = r.get("eval_seconds")
        if scoring is not None:
            scoring = (float(scoring) + float(raw.get("eval_seconds") or 0.0)) / 60
        per.setdefault(str(r["variant"]), []).append({
            "kimg": _num(r.get("kimg")), "img/s": _num(r.get("img_per_s")),
            "train h": _num(r.get("train_seconds")) / 3600, "scoring min": _num(scoring),
            "CPU-h per job": cpu,
        })  # fmt: skip
    if not per:
        return pd.DataFrame(columns=cols)
    table = {}
    for variant, jobs in per.items():
        f = pd.DataFrame(jobs)
        cpu = f["CPU-h per job"]
        table[variant] = {
            "jobs": len(f), **f.mean(skipna=True).to_dict(),
            "CPU-h": cpu.sum() if cpu.notna().all() else np.nan,
        }  # fmt: skip
    out = pd.DataFrame.from_dict(table, orient="index")[cols]
    known = [j["CPU-h per job"] for jobs in per.values() for j in jobs]
    known = [c for c in known if not np.isnan(c)]
    out.loc["all jobs"] = {c: np.nan for c in cols} | {
        "jobs": int(out["jobs"].sum()), "CPU-h": sum(known) if known else np.nan,
    }  # fmt: skip
    out["jobs"] = out["jobs"].astype(int)
    out.index.name = "variant"  # the HTML page shows a named index only
    return out


def cost_cells(table: pd.DataFrame) -> pd.DataFrame:
    """:func:`cost_table` as display strings (whole img/s, 2 decimals for hours per job, 1
    for kimg, minutes and the CPU-h sums; – for a missing value)."""
    digits = {"kimg": 1, "img/s": 0, "train h": 2, "scoring min": 1, "CPU-h per job": 2,
              "CPU-h": 1}  # fmt: skip
    out = table.astype(object).copy()
    for col, d in digits.items():
        out[col] = [("–" if pd.isna(v) else f"{v:,.{d}f}") for v in table[col]]
    out["jobs"] = [str(int(v)) for v in table["jobs"]]
    return out


def _num(value: Any) -> float:
    return np.nan if value is None else float(value)
