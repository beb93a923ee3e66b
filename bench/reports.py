"""`bench report` glue: read run folders, hand their rows to the reports package, write files."""

from __future__ import annotations

from pathlib import Path

from bench.errors import BenchError
from bench.fsutil import atomic_path
from bench.runs import RunFolder
from metrics.keys import METRICS
from reports.frame import compare_runs, summarize, tidy, to_markdown, wide_table

# The columns of the headline table, in reading order.
HEADLINE = [
    "fid_fmnist",
    "kid_fmnist",
    "is_fmnist",
    "precision_fmnist",
    "recall_fmnist",
    "class_coverage",
    "label_accuracy",
    "fid_inception",
    "kid_inception",
    "is_inception",
    "ppl",
    "interp_discontinuity",
]


def run_label(path: Path, taken: set[str]) -> str:
    """A short unique label for a run folder (its name, disambiguated by its parent)."""
    label = path.resolve().name
    if label in taken:
        label = f"{path.resolve().parent.name}/{label}"
    return label


def write_tables(run_dirs: tuple[Path, ...] | list[Path], out: Path) -> str:
    """Write tidy.csv, summary.csv and tables.md for ``run_dirs`` into ``out``; return the
    Markdown."""
    runs: dict[str, list] = {}
    for d in run_dirs:
        rows = RunFolder(d).results()
        if not rows:
            raise BenchError(f"{d}: results.jsonl has no rows yet")
        runs[run_label(d, set(runs))] = rows
    frame = tidy(runs)
    summary = summarize(frame)
    parts = []
    for run in runs:
        present = [m for m in HEADLINE if m in set(summary.loc[summary["run"] == run, "metric"])]
        table = wide_table(summary, present, run)
        sub = frame[frame["run"] == run]
        seeds = sub.groupby("variant")["seed"].nunique()
        counts = ", ".join(f"{v} {int(n)}" for v, n in seeds.items())
        parts.append(
            f"## {run}\n\nSeeds per variant: {counts}. Cells: mean ± std [95% t-interval] "
            "over seeds; * best in the metric's direction.\n\n"
        )
        parts.append(to_markdown(table))
        bad = sub[sub["status"] != "ok"].drop_duplicates(["variant", "seed"])
        for r in bad.itertuples():
            parts.append(f"- `{r.variant}` seed {r.seed}: {r.status}\n")
        parts.append("\nProtocols:\n")
        for m in present:
            proto = summary.loc[(summary["run"] == run) & (summary["metric"] == m), "protocol"]
            arrow = "higher is better" if METRICS[m].higher_is_better else "lower is better"
            parts.append(f"- `{m}` ({arrow}): {'; '.join(sorted(set(proto)))}\n")
        parts.append("\n")
    if len(runs) > 1:
        parts.append("## Runs side by side\n\n")
        for variant in dict.fromkeys(summary["variant"]):
            present = [
                m
                for m in HEADLINE
                if m in set(summary.loc[summary["variant"] == variant, "metric"])
            ]
            parts.append(f"### `{variant}`\n\n")
            parts.append(to_markdown(compare_runs(summary, variant, present), index_name="run"))
            parts.append("\n")
    markdown = "".join(parts)
    out.mkdir(parents=True, exist_ok=True)
    for name, write in (
        ("tidy.csv", lambda p: frame.to_csv(p, index=False)),
        ("summary.csv", lambda p: summary.to_csv(p, index=False)),
        ("tables.md", lambda p: Path(p).write_text(markdown, encoding="utf-8")),
    ):
        with atomic_path(out / name) as tmp:
            write(tmp)
    return markdown
