"""`bench report` glue: read run folders, hand their rows to the reports package, write files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from bench.errors import BenchError
from bench.floor import read_floor
from bench.report_markdown import tables_markdown
from bench.report_page import job_logs, render_page
from bench.runs import RunFolder
from metrics.common import atomic_path
from metrics.keys import headline
from reports.cost import cost_table
from reports.frame import (
    SpaceAgreement,
    cheapest_budget,
    latest_rows,
    neighbour_tests,
    present_metrics,
    ranking_by_budget,
    space_agreement,
    summarize,
    tidy,
    wide_table,
)
from reports.headline import headline_table, unfinished_jobs
from reports.published import comparison as published_comparison
from reports.published import matches_protocol


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
        run: published_comparison(
            frame, summary, run, _protocol_losses(folder, rows), raw_g_fids(rows)
        )
        for run, (folder, rows) in runs.items()
    }
    real = {run: floor_summary(folder) for run, (folder, _) in runs.items()}  # read once
    floors = {run: floor_table(s) for run, s in real.items()}
    groups = together(runs, real) if len(runs) > 1 else []
    skipped: list[str] = []
    logs = job_logs(runs, skipped)
    tracked = pd.concat(logs["tracked"], ignore_index=True) if logs["tracked"] else None
    evidence = {
        run: ranking_evidence(
            rows, frame, summary, run, None if tracked is None else tracked[tracked["run"] == run]
        )
        for run, (_, rows) in runs.items()
    }
    tops = {
        run: run_headline(summary, run, real[run], rows, evidence[run], beside[run])
        for run, (_, rows) in runs.items()
    }
    markdown = tables_markdown(rows_by_run, frame, summary, beside, floors, groups, evidence, tops)
    page, figures, skipped = render_page(
        runs, frame, summary, beside, floors, groups, evidence, logs, skipped, tops
    )
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


# The metric a run's ranking is read from: the first of these that the run has.
RANKING_METRICS = ("fid_inception", "fid_fmnist")
AGREEMENT = 0.8  # Kendall tau from which a cheaper budget is said to predict the ranking
TRACKED = "fid_fmnist"  # the metric the tracked curves rank by (:func:`ranking_by_budget`)


@dataclass
class RankingEvidence:
    """What a run's seeds and curves say about its ranking by ``metric``: which neighbours
    differ (:func:`reports.frame.neighbour_tests`), and from which tracked budget the curves
    already rank the variants like the final table (:func:`reports.frame.ranking_by_budget`;
    ``by_budget`` empty when the run tracked no curves).

    When ``metric`` is not the tracked one (FID(inception) ranks, FID(fmnist) is tracked),
    two things limit how well a curve can predict the table: the budget, and the feature
    space. ``by_budget`` then also ranks each budget against the final table's own
    FID(fmnist) (columns ``kendall_tau_fid_fmnist``, ``p_value_fid_fmnist``: the budget
    alone), and ``spaces`` says how far the two final rankings agree (the feature space
    alone), so a reader sees which of the two keeps a budget from agreeing."""

    metric: str
    neighbours: pd.DataFrame
    by_budget: pd.DataFrame
    budget: float | None  # the run's budget in kimg
    tracked_samples: int | None
    spaces: SpaceAgreement | None = None  # reports.frame.space_agreement's

    @property
    def cheapest(self) -> float | None:
        """The first tracked budget from which tau stays >= AGREEMENT (None: none)."""
        return cheapest_budget(self.by_budget, AGREEMENT)

    @property
    def same_space(self) -> tuple[str, str] | None:
        """The tau and p-value columns of ``by_budget`` against the final table's own
        FID(fmnist) (None: not computed, the run ranks by the tracked metric itself)."""
        tau, p = f"kendall_tau_{TRACKED}", f"p_value_{TRACKED}"
        return (tau, p) if tau in self.by_budget else None

    @property
    def cheapest_same_space(self) -> float | None:
        """The same against the final table's FID(fmnist) (None: none, or not computed)."""
        cols = self.same_space
        return None if cols is None else cheapest_budget(self.by_budget, AGREEMENT, cols[0])

    def budget_sentence(self) -> str:
        """What the tau table says: the cheapest agreeing budget, and where the metric is not
        the tracked one, the same-space budget and the two final rankings' agreement."""
        of = f" (the run's budget: {self.budget:g} kimg)" if self.budget else ""
        head = (
            f"Kendall's tau-b between the variants ranked by their tracked FID(fmnist) "
            f"({self.tracked_samples} samples, seed means) at each budget and the final "
        )
        if self.spaces is None:
            where = _from(self.cheapest)
            return f"{head}ranking by `{self.metric}`: it stays >= {AGREEMENT} {where}{of}."
        sp = self.spaces
        return (
            f"{head}rankings. Against the final table's own FID(fmnist) (the same feature "
            f"space, 10,000-sample scores) it stays >= {AGREEMENT} "
            f"{_from(self.cheapest_same_space)}; against `{self.metric}` "
            f"{_from(self.cheapest)}{of}. The feature space bounds the second: the finished "
            f"models ranked by FID(fmnist) and by `{self.metric}` agree at tau {sp.tau:.3f} "
            f"(p {sp.p_value:.3g}, {sp.variants} variants); they disagree most on "
            f"`{sp.variant}` ({_nth(sp.rank_tracked)} by FID(fmnist), "
            f"{_nth(sp.rank_metric)} by `{self.metric}`)."
        )


def _from(kimg: float | None) -> str:
    return f"from {kimg:g} kimg on" if kimg is not None else "at no budget"


def _nth(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def _final_means(summary: Any, run: str, metric: str) -> dict[str, float]:
    """Variant -> the run's seed mean of ``metric`` among the rows of its largest protocol
    (the ten-class rows; a two-class variant is scored against another reference)."""
    s = summary[(summary["run"] == run) & (summary["metric"] == metric)]
    if s.empty:
        return {}
    largest = s.groupby("protocol")["variant"].count().idxmax()
    s = s[s["protocol"] == largest]
    return dict(zip(s["variant"], s["mean"], strict=True))


def ranking_evidence(
    rows: list, frame: Any, summary: Any, run: str, curves: pd.DataFrame | None
) -> Any:
    """The run's :class:`RankingEvidence` from its rows and tracked ``curves`` (columns
    variant, seed, kimg and the tracked metrics; None: none), or None when it has no
    ranking metric."""
    have = set(summary.loc[summary["run"] == run, "metric"])
    metric = next((m for m in RANKING_METRICS if m in have), None)
    if metric is None:
        return None
    neighbours = neighbour_tests(frame, summary, run, metric)
    latest = [r for r in latest_rows(rows) if r.get("status") == "ok"]
    every = {(r.get("tracked") or {}).get("every_kimg") for r in latest}
    samples = {(r.get("tracked") or {}).get("samples") for r in latest}
    budgets = [float(r["kimg_budget"]) for r in latest if r.get("kimg_budget")]
    by_budget = pd.DataFrame(columns=["kimg", "variants", "kendall_tau", "p_value"])
    spaces = None
    if len(every) == 1 and None not in every and curves is not None and not curves.empty:
        step = float(every.pop())
        final = _final_means(summary, run, metric)
        by_budget = ranking_by_budget(curves, final, step, TRACKED)
        own = _final_means(summary, run, TRACKED) if metric != TRACKED else {}
        same = ranking_by_budget(curves, own, step, TRACKED) if own else None
        if not by_budget.empty and same is not None and not same.empty:
            suffixed = {c: f"{c}_{TRACKED}" for c in ("kendall_tau", "p_value")}
            same = same.drop(columns="variants").rename(columns=suffixed)
            by_budget = by_budget.merge(same, on="kimg", how="left")
            spaces = space_agreement(own, final)
    return RankingEvidence(
        metric, neighbours, by_budget, max(budgets) if budgets else None,
        samples.pop() if len(samples) == 1 else None, spaces,
    )  # fmt: skip


def run_headline(
    summary: Any, run: str, floor: Any, rows: list, evidence: RankingEvidence | None, beside: Any
) -> Any:
    """The run's headline table (:func:`reports.headline.headline_table`) with its real-data
    floor (``floor``, :func:`floor_summary`'s) on top, its cost and its jobs without a
    result, ranked by the metric its evidence ranks by; empty when it has no ranking
    metric."""
    if evidence is None:
        return pd.DataFrame()
    return headline_table(
        summary, run, evidence.metric, beside, cost_table(rows), floor,
        unfinished_jobs(rows),
    )  # fmt: skip


def floor_summary(folder: Path) -> Any:
    """The run's real-data floor (``bench floor``) summarized over its draws (never ranked:
    ``best`` is False); None when the folder has no floor rows."""
    rows = [r for r in read_floor(folder) if r.get("status") == "ok"]
    if not rows:
        return None
    return summarize(tidy({"floor": rows})).assign(best=False)


def floor_table(summary: Any) -> Any:
    """A run's real-data floor (:func:`floor_summary`) as a one-row table of its headline
    metrics, mean ± std over the draws; None for a run without floor rows."""
    if summary is None:
        return None
    return wide_table(summary, present_metrics(summary, "floor", headline()), "floor")


def together(
    runs: dict[str, tuple[Path, list]], floors: dict[str, Any]
) -> list[tuple[list[str], Any, Any]]:
    """Runs made under the same profile and budget, ranked as one table: a user's run beside
    committed baselines (``bench report runs/mine reports/results/lucic/run``). A variant
    present in several of them is labelled ``variant (run)``. Returns, per group of two or
    more runs, (run labels, headline table, table of every headline metric): the headline
    ranks the group's variants best first with the raw G and the published numbers where the
    rows have them, under the first of the runs' real-data floors (``floors``: run label ->
    :func:`floor_summary`'s); ranks and best marks stay per protocol, as everywhere."""
    groups: dict[tuple, list[str]] = {}
    for run, (_, rows) in runs.items():
        keys = {(r.get("profile"), r.get("kimg_budget")) for r in latest_rows(rows)}
        if len(keys) == 1:
            groups.setdefault(keys.pop(), []).append(run)
    return [_ranked_together(runs, labels, floors) for labels in groups.values() if len(labels) > 1]


def _ranked_together(
    runs: dict[str, tuple[Path, list]], labels: list[str], floors: dict[str, Any]
) -> tuple:
    """One group of :func:`together`: (labels, headline table, table of every headline
    metric) of the runs ``labels`` merged into one run, ``together``."""
    seen: dict[str, int] = {}
    for run in labels:
        for v in {str(r["variant"]) for r in runs[run][1]}:
            seen[v] = seen.get(v, 0) + 1
    names = {(v, run): v if n == 1 else f"{v} ({run})" for v, n in seen.items() for run in labels}
    merged = [{**r, "variant": names[(str(r["variant"]), run)]}
              for run in labels for r in latest_rows(runs[run][1])]  # fmt: skip
    losses = {names[(v, run)]: loss for run in labels
              for v, loss in _protocol_losses(*runs[run]).items()}  # fmt: skip
    frame = tidy({"together": merged})
    summary = summarize(frame)
    beside = published_comparison(frame, summary, "together", losses, raw_g_fids(merged))
    metric = next((m for m in RANKING_METRICS if m in set(summary["metric"])), None)
    floor = next((f for f in (floors[r] for r in labels) if f is not None),
                 None)  # fmt: skip
    top = pd.DataFrame()
    if metric is not None:
        top = headline_table(summary, "together", metric, beside, cost_table(merged), floor,
                             unfinished_jobs(merged))  # fmt: skip
    table = wide_table(summary, present_metrics(summary, "together", headline()), "together")
    return labels, top, table


def raw_g_fids(rows: list) -> dict[str, list[float]]:
    """Variant -> the raw G's FID(inception) of each latest ok row that has one under the
    Lucic et al. protocol's sample sizes (rows' ``raw_g``, the `lucic` profile's)."""
    out: dict[str, list[float]] = {}
    for r in latest_rows(rows):
        raw = r.get("raw_g") or {}
        fid = (raw.get("metrics") or {}).get("fid_inception")
        if r.get("status") == "ok" and fid is not None and matches_protocol(raw):
            out.setdefault(str(r["variant"]), []).append(float(fid))
    return out


def _protocol_losses(folder: Path, rows: list) -> dict[str, str]:
    """Variant -> loss for the unconditional variants of one run whose every latest row made
    FID(inception) under the Lucic et al. protocol's sample sizes (the published models are
    unconditional). The loss is the one config.json records for the run (a --set loss=...
    included), else the registry's."""
    from models.registry import UnknownVariantError, get_variant

    def registered(v: str) -> tuple[str | None, bool]:
        try:
            variant = get_variant(v)
        except UnknownVariantError:
            return None, False
        return variant.loss, variant.conditional

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
        recipe = recipes.get(v) or {}
        loss, conditional = registered(v)
        loss = recipe.get("loss") or loss
        conditional = bool(recipe.get("conditional", conditional))
        if good and isinstance(loss, str) and not conditional:
            losses[v] = loss
    return losses
