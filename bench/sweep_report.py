"""`bench report SWEEP`: the settings of a sweep ranked, the metric against every searched
hyper-parameter, and the phase-2 table (mean, std and 95% t-interval over seeds)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from bench.sweep import read_sweep, scores
from metrics.common import atomic_path
from reports.figures import sweep_params
from reports.html import Figure, Section, render


def sweep_tables(
    sweep: Path, record: dict[str, Any]
) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """(phase 1 ranked, phase 2 summary, searched parameters) of a sweep folder."""
    rows = pd.DataFrame(scores(sweep, record))
    params = list(dict.fromkeys(k for s in record["settings"] for k in s["overrides"]))
    if rows.empty:
        return rows, rows, params
    hib = bool(record["higher_is_better"])
    first = rows[rows["seed"] == 0].copy()
    first["rank"] = (first.groupby("variant")["value"]
                     .rank(ascending=not hib, method="min").astype("Int64"))  # fmt: skip
    first = first.sort_values(["variant", "rank"], na_position="last")
    phase1 = first[["variant", "rank", "setting", *params, "status", "value"]]
    chosen = record.get("phase2") or {}
    keep = [(v, s) for v, ids in chosen.items() for s in ids]
    multi = rows[[(v, s) in keep for v, s in zip(rows["variant"], rows["setting"], strict=True)]]
    g = multi.groupby(["variant", "setting"], sort=False)["value"]
    phase2 = g.agg(n="count", mean="mean", std="std").reset_index()
    half = [stats.t.ppf(0.975, n - 1) * sd / np.sqrt(n) if n > 1 else np.nan
            for n, sd in zip(phase2["n"], phase2["std"], strict=True)]  # fmt: skip
    phase2["ci_low"] = phase2["mean"] - np.array(half, dtype=float)
    phase2["ci_high"] = phase2["mean"] + np.array(half, dtype=float)
    phase2["rank"] = (phase2.groupby("variant")["mean"]
                      .rank(ascending=not hib, method="min").astype("Int64"))  # fmt: skip
    by_id = {s["id"]: s["overrides"] for s in record["settings"]}
    for p in params:
        phase2[p] = [by_id[s].get(p, "") for s in phase2["setting"]]
    phase2 = phase2.sort_values(["variant", "rank"])
    cols = ["variant", "rank", "setting", *params, "n", "mean", "std", "ci_low", "ci_high"]
    return phase1, phase2[cols], params


def _markdown(frame: pd.DataFrame) -> str:
    if frame.empty:
        return "(no finished rows yet)\n"
    text = frame.copy()
    for c in text.columns:
        if text[c].dtype.kind == "f":
            text[c] = [("–" if pd.isna(v) else f"{v:.3f}" if abs(v) < 10 else f"{v:.1f}")
                       for v in text[c]]  # fmt: skip
    lines = ["| " + " | ".join(map(str, text.columns)) + " |", "|" + "---|" * len(text.columns)]
    lines += ["| " + " | ".join(map(str, r)) + " |" for r in text.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def write_sweep_report(sweep: Path, out: Path) -> tuple[str, Path]:
    """sweep.html, phase1.csv, phase2.csv and tables.md under ``out``; returns the
    Markdown and the page's path."""
    record = read_sweep(sweep)
    assert record is not None
    phase1, phase2, params = sweep_tables(sweep, record)
    metric = record["metric"]
    better = "higher" if record["higher_is_better"] else "lower"
    markdown = (f"## Sweep {record.get('name', '')}: phase 1 (seed 0), ranked by {metric} "
                f"({better} is better)\n\n{_markdown(phase1)}\n"
                f"## Phase 2: the best settings over seeds (mean, std, 95% t-interval)\n\n"
                f"{_markdown(phase2)}")  # fmt: skip
    log_params = {a for a, v in (record.get("spec", {}).get("space") or {}).items()
                  if isinstance(v, dict) and v.get("log")}  # fmt: skip
    figures = []
    if not phase1.empty:
        all_rows = pd.DataFrame(scores(sweep, record))
        png = sweep_params(all_rows, metric, params, log_params)
        if png is not None:
            caption = f"{metric} of every (setting, seed) against each searched hyper-parameter"
            figures.append(Figure(png, caption, name="sweep-params"))

    def shown(frame: pd.DataFrame) -> pd.DataFrame:
        """Floats to four significant digits for the page (the CSVs keep every digit)."""
        out = frame.copy()
        for c in out.columns:
            if out[c].dtype.kind == "f":
                out[c] = [v if pd.isna(v) else float(f"{v:.4g}") for v in out[c]]
        return out.set_index("variant")

    sections = [
        Section(f"Phase 1: every setting, seed 0, ranked by {metric} ({better} is better)",
                tables=[("phase 1", shown(phase1))] if not phase1.empty else [],
                figures=figures),
        Section("Phase 2: the best settings over seeds",
                paragraphs=["Mean, standard deviation and 95% Student-t interval over seeds; "
                            "each setting is a run folder (SWEEP/sNN) that `bench report` "
                            "also reads on its own."],
                tables=[("phase 2", shown(phase2))] if not phase2.empty else []),
    ]  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    page = out / "sweep.html"
    for name, text in [
        ("sweep.html", render(f"Sweep {record.get('name', '')}", sections, str(sweep))),
        ("phase1.csv", phase1.to_csv(index=False)),
        ("phase2.csv", phase2.to_csv(index=False)),
        ("tables.md", markdown),
    ]:
        with atomic_path(out / name) as tmp:
            Path(tmp).write_text(text, encoding="utf-8")
    for fig in figures:
        with atomic_path(out / "figures" / f"{fig.name}.png") as tmp:
            Path(tmp).write_bytes(fig.png)
    return markdown, page
