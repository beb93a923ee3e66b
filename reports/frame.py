"""Results rows -> one tidy pandas frame -> per-variant summaries with confidence intervals.

Every table and figure of a report derives from :func:`tidy`: one row per (run, variant,
seed, metric) with the value, the metric's direction and the protocol that produced it. The
reports package does not read files itself (``bench report`` hands it the rows), so it works
the same on rows from disk, from a test or from another tool.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from metrics.keys import METRICS, ranking

# Per-job facts carried beside every metric value (for the capacity study, speed tables).
JOB_FIELDS = (
    "status",
    "seed_doc",
    "profile",
    "kimg",
    "img_per_s",
    "train_seconds",
    "train_cpu_seconds",
    "params_g",
    "params_d",
)


def _protocol_name(metric: str) -> str:
    """The row's protocol section that describes ``metric`` (the evaluator's for a key this
    version does not know)."""
    return METRICS[metric].protocol if metric in METRICS else "fmnist"


def _protocol_label(row: Mapping[str, Any], name: str) -> str:
    if name == "latent_paths":  # recorded inside the smoothness protocol
        s = (row.get("protocol") or {}).get("smoothness") or {}
        lp = s.get("latent_paths") or {}
        if not lp:
            return ""
        return (
            f"{s.get('similarity')} {lp.get('paths')} {lp.get('interpolation')} paths x "
            f"{lp.get('steps')} steps"
        )
    p = (row.get("protocol") or {}).get(name)
    if not p:
        return ""
    if name == "smoothness":
        return f"{p.get('similarity')} {p.get('samples')} pairs eps {p.get('epsilon')}"
    ref = p.get("reference") or {}
    sha = str(p.get("weights_sha256", ""))[:8]
    return (
        f"{p.get('extractor')}@{sha} N={p.get('num_samples')} vs {ref.get('split')}"
        f"[{ref.get('size')}]"
    )


def latest_rows(rows: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The newest row of each (variant, seed), in first-seen order (results.jsonl appends)."""
    out: dict[tuple[str, int], Mapping[str, Any]] = {}
    for r in rows:
        out[(str(r["variant"]), int(r["seed"]))] = r
    return list(out.values())


def tidy(runs: Mapping[str, Iterable[Mapping[str, Any]]]) -> pd.DataFrame:
    """One row per (run, variant, seed, metric): value, direction, protocol, job facts.

    ``runs`` maps a run label (e.g. the folder name) to its result rows. Jobs that did not
    finish ``ok`` appear once with metric ``None`` so that tables can show them as such.
    """
    records: list[dict[str, Any]] = []
    for run, rows in runs.items():
        for r in latest_rows(rows):
            base = {
                "run": run,
                "variant": str(r["variant"]),
                "seed": int(r["seed"]),
                "overrides": _overrides_label(r.get("overrides")),
                **{f: r.get(f) for f in JOB_FIELDS},
            }
            metrics = r.get("metrics") or {}
            if r.get("status") != "ok" or not metrics:
                records.append({**base, "metric": None, "value": np.nan})
                continue
            for key, value in metrics.items():
                if value is None:
                    continue
                name = _protocol_name(key)
                records.append(
                    {
                        **base,
                        "metric": key,
                        "value": float(value),
                        "higher_is_better": METRICS[key].higher_is_better
                        if key in METRICS
                        else None,
                        "ranked": key in METRICS and METRICS[key].ranked,
                        "protocol": _protocol_label(r, name),
                    }
                )
    cols = ["run", "variant", "seed", "overrides", *JOB_FIELDS, "metric", "value"]
    frame = pd.DataFrame.from_records(records)
    if frame.empty:
        return pd.DataFrame(columns=[*cols, "higher_is_better", "ranked", "protocol"])
    for c in ("higher_is_better", "ranked", "protocol"):
        if c not in frame:
            frame[c] = None
    return frame


def _overrides_label(overrides: Mapping[str, Any] | None) -> str:
    if not overrides:
        return ""
    return " ".join(f"{k}={v}" for k, v in sorted(overrides.items()))


def summarize(frame: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """Per (run, variant, metric): seeds, mean, std, t-interval, rank and best flag.

    The interval is Student's t over seeds (undefined, NaN, with one seed). Ranks follow
    the metric's declared direction within each (run, metric, protocol): only values made
    under the same protocol (extractor, sample count, reference split and size) are ranked
    against each other, so a variant scored against its two classes' 2,000 test images never
    takes a "best" mark from the ten-class rows. ``best`` marks rank 1 of each group.
    """
    data = frame.dropna(subset=["metric"])
    if data.empty:
        return pd.DataFrame(
            columns=["run", "variant", "metric", "n", "mean", "std", "ci_low", "ci_high"]
        )
    g = data.groupby(["run", "variant", "metric"], sort=False)["value"]
    out = g.agg(n="count", mean="mean", std="std").reset_index()
    half = out.apply(
        lambda r: (
            stats.t.ppf(0.5 + confidence / 2, r["n"] - 1) * r["std"] / np.sqrt(r["n"])
            if r["n"] > 1
            else np.nan
        ),
        axis=1,
    )
    out["ci_low"], out["ci_high"] = out["mean"] - half, out["mean"] + half
    direction = data.groupby("metric")["higher_is_better"].first()
    out["higher_is_better"] = out["metric"].map(direction)
    out["ranked"] = out["metric"].map(data.groupby("metric")["ranked"].first())
    keys = ["run", "variant", "metric"]
    protocols = data.groupby(keys)["protocol"].agg(lambda s: "; ".join(sorted(set(s))))
    out["protocol"] = [protocols.get(k, "") for k in zip(*(out[c] for c in keys), strict=True)]

    out["rank"] = out.groupby(["run", "metric", "protocol"], group_keys=False)[
        ["mean", "higher_is_better", "ranked"]
    ].apply(_rank)
    out["best"] = out["rank"] == 1
    return out


def _rank(group: pd.DataFrame) -> pd.Series:
    """Ranks of ``mean`` in the group's direction; NaN for an unranked or unknown metric."""
    hib, ranked = group["higher_is_better"].iloc[0], group["ranked"].iloc[0]
    if hib is None or pd.isna(hib) or not bool(ranked):
        return pd.Series(np.nan, index=group.index)
    return group["mean"].rank(ascending=not bool(hib), method="min")


APART_MARK = "†"


def protocol_groups(frame: pd.DataFrame, metric: str) -> tuple[list[str], list[str], str]:
    """The variants with values of ``metric``, split as the tables rank them: those scored
    under the metric's main protocol (the one most (run, variant) pairs share) and those
    scored only under another (the two-class variant, scored against its classes' 2,000
    test images), each in frame order, and what the others were scored against (e.g.
    ``test[2000]``). ``frame`` is a tidy frame or a summary (columns run, variant, metric,
    protocol). Tables list the second group below the first and figures draw it apart,
    marked :data:`APART_MARK`, so that no row, bar or point sets a value of one protocol
    among values of another."""
    data = frame[frame["metric"] == metric]
    order = list(dict.fromkeys(data["variant"]))
    if "protocol" not in data or data["protocol"].nunique() < 2:
        return order, [], ""
    pairs = data.drop_duplicates(["run", "variant", "protocol"])
    main = pairs["protocol"].value_counts().index[0]
    has_main = set(pairs.loc[pairs["protocol"] == main, "variant"])
    apart = [v for v in order if v not in has_main]
    others = sorted(set(pairs.loc[pairs["variant"].isin(apart), "protocol"]))
    against = "; ".join(p.split(" vs ")[-1] for p in others)
    return [v for v in order if v in has_main], apart, against


def wide_table(summary: pd.DataFrame, metrics: list[str], run: str | None = None) -> pd.DataFrame:
    """Variants x metrics of "mean ± std" strings (best marked with ``*``), for one run.

    Variants scored under another protocol than the rest in any of ``metrics``
    (:func:`protocol_groups`) come last, and ``table.attrs["apart"]`` maps each to what it
    was scored against, so that :func:`to_markdown` and the HTML page mark them."""
    s = summary if run is None else summary[summary["run"] == run]
    s = s[s["metric"].isin(metrics)]
    cells = s.assign(cell=[cell(r) for r in s.itertuples()])
    table = cells.pivot_table(index="variant", columns="metric", values="cell", aggfunc="first")
    order = list(dict.fromkeys(s["variant"]))
    apart: dict[str, str] = {}
    for m in dict.fromkeys(s["metric"]):
        _, others, against = protocol_groups(s, m)
        apart.update(dict.fromkeys(others, against))
    order = [v for v in order if v not in apart] + [v for v in order if v in apart]
    table = table.reindex(index=order, columns=[m for m in metrics if m in table.columns])
    table.attrs["apart"] = apart
    return table


def apart_note(table: pd.DataFrame) -> str:
    """The footnote of a table with rows scored under another protocol ('' for none)."""
    apart = table.attrs.get("apart") or {}
    if not apart:
        return ""
    against = "; ".join(sorted(set(apart.values())))
    return (
        f"{APART_MARK} scored against {against}, another protocol than the rows above: ranked, "
        "marked best and tested only among the rows of its own protocol."
    )


def cell(r: Any, interval: bool = True) -> str:
    """One summary row (``mean``, ``std``, ``n``, ``ci_low``, ``ci_high``, ``best``) as
    "mean ± std [95% interval] *": 3 decimals under 10, else 1; the interval only with
    ``interval`` and the spread only over several seeds; ``*`` marks the best."""
    digits = 3 if abs(r.mean) < 10 else 1

    def num(x: float) -> str:
        text = f"{x:.{digits}f}"
        return text[1:] if text.startswith("-") and float(text) == 0 else text  # no "-0.000"

    text = num(r.mean)
    if r.n > 1 and not np.isnan(r.std):
        text += f" ± {num(r.std)}" + (f" [{num(r.ci_low)}, {num(r.ci_high)}]" if interval else "")
    return text + (" *" if r.best else "")


def to_markdown(table: pd.DataFrame, index_name: str = "variant") -> str:
    """A GitHub-flavoured Markdown table (no tabulate dependency); rows of another protocol
    (``table.attrs["apart"]``, :func:`wide_table`) marked with a footnote below."""
    head = [index_name, *[str(c) for c in table.columns]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    apart = table.attrs.get("apart") or {}
    for variant, row in table.iterrows():
        cells = ["–" if (isinstance(v, float) and np.isnan(v)) else str(v) for v in row]
        name = f"`{variant}`" + (f" {APART_MARK}" if variant in apart else "")
        lines.append("| " + " | ".join([name, *cells]) + " |")
    note = apart_note(table)
    return "\n".join(lines) + "\n" + (f"\n{note}\n" if note else "")


def compare_runs(summary: pd.DataFrame, variant: str, metrics: list[str]) -> pd.DataFrame:
    """Runs x metrics for one variant ("mean ± std", best run marked ``*``): a sweep's or a
    regression view's table, ranked across runs in each metric's direction."""
    s = summary[(summary["variant"] == variant) & summary["metric"].isin(metrics)].copy()
    s["rank"] = s.groupby("metric", group_keys=False)[["mean", "higher_is_better", "ranked"]].apply(
        _rank
    )
    s["best"] = s["rank"] == 1
    cells = s.assign(cell=[cell(r) for r in s.itertuples()])
    table = cells.pivot_table(index="run", columns="metric", values="cell", aggfunc="first")
    order = list(dict.fromkeys(s["run"]))
    return table.reindex(index=order, columns=[m for m in metrics if m in table.columns])


def ranking_agreement(
    summary: pd.DataFrame, run_a: str, run_b: str, metrics: list[str]
) -> pd.DataFrame:
    """Per metric, how far two runs rank their common variants alike: Kendall's tau-b of
    the seed means (1: the same order, -1: reversed), its two-sided p-value and the number of
    variants, e.g. how well the CPU `quick` ranking predicts the `lucic` one. Metrics with
    fewer than three common variants are left out."""
    rows = []
    for m in metrics:
        a = summary[(summary["run"] == run_a) & (summary["metric"] == m)].set_index("variant")
        b = summary[(summary["run"] == run_b) & (summary["metric"] == m)].set_index("variant")
        common = [v for v in a.index if v in b.index]
        if len(common) < 3:
            continue
        tau, p = stats.kendalltau(a.loc[common, "mean"], b.loc[common, "mean"])
        if np.isnan(tau):  # one run ties every variant: no order to compare
            continue
        rows.append({"metric": m, "variants": len(common), "kendall_tau": tau, "p_value": p})
    return pd.DataFrame(rows, columns=["metric", "variants", "kendall_tau", "p_value"])


def present_metrics(summary: pd.DataFrame, run: str, metrics: list[str]) -> list[str]:
    """The ``metrics`` that ``run`` has values for, in the given order."""
    have = set(summary.loc[summary["run"] == run, "metric"])
    return [m for m in metrics if m in have]


def metric_protocols(
    summary: pd.DataFrame,
    run: str,
    metrics: list[str],
) -> list[dict[str, str]]:
    """Per metric of ``run``: its direction and the protocol(s) its values were made under."""
    out = []
    for m in metrics:
        proto = summary.loc[(summary["run"] == run) & (summary["metric"] == m), "protocol"]
        out.append(
            {"metric": m, "direction": ranking(m), "protocol": "; ".join(sorted(set(proto)))}
        )
    return out


def neighbour_tests(
    frame: pd.DataFrame, summary: pd.DataFrame, run: str, metric: str, alpha: float = 0.05
) -> pd.DataFrame:
    """Which neighbours in ``run``'s ranking by ``metric`` their seeds tell apart.

    Within each protocol group (rows ranked together, as in :func:`summarize`), the variants
    in rank order, and for each pair of neighbours Welch's two-sided t-test of their per-seed
    values (unequal variances: recipes differ in how much they vary); ``gap`` is the
    difference of their means in the metric's units. ``separated`` is
    p < ``alpha``; a pair with fewer than two seeds on a side, or no spread at all, has no
    p-value and is not separated. Three seeds give the test little power, so "not
    separated" means "not shown different", not "equal"."""
    cols = ["protocol", "better", "worse", "gap", "p_value", "separated"]
    s = summary[(summary["run"] == run) & (summary["metric"] == metric)].dropna(subset=["rank"])
    data = frame[(frame["run"] == run) & (frame["metric"] == metric)]
    rows = []
    for protocol, group in s.groupby("protocol", sort=False):
        ordered = group.sort_values("rank")["variant"].tolist()
        for better, worse in itertools.pairwise(ordered):
            a = data.loc[data["variant"] == better, "value"].to_numpy(float)
            b = data.loc[data["variant"] == worse, "value"].to_numpy(float)
            p = np.nan
            if len(a) > 1 and len(b) > 1 and (a.std() > 0 or b.std() > 0):
                p = float(stats.ttest_ind(a, b, equal_var=False).pvalue)
            rows.append({"protocol": protocol, "better": better, "worse": worse,
                         "gap": float(abs(b.mean() - a.mean())), "p_value": p,
                         "separated": bool(p < alpha)})  # fmt: skip
    return pd.DataFrame(rows, columns=cols)


def ranking_by_budget(
    tracked: pd.DataFrame,
    final: Mapping[str, float],
    every_kimg: float,
    metric: str = "fid_fmnist",
) -> pd.DataFrame:
    """How early the training curves predict the final ranking: per tracked budget, Kendall's
    tau-b between the variants ordered by ``metric`` at that budget (the seed mean of the
    tracked curve, ``tracked``: columns variant, seed, kimg, ``metric``) and ordered by
    ``final`` (variant -> the final table's seed mean of a metric with the same direction,
    e.g. FID(inception)). Tracked points are binned to the nominal budget (a multiple of
    ``every_kimg``; batches make the exact kimg differ by variant), the last point of a bin
    counting; a budget is left out unless every variant of ``final`` has a point there.
    Columns: kimg, variants, kendall_tau, p_value."""
    cols = ["kimg", "variants", "kendall_tau", "p_value"]
    t = tracked[tracked["variant"].isin(list(final))].dropna(subset=[metric])
    if t.empty or len(final) < 3:
        return pd.DataFrame(columns=cols)
    t = t.assign(point=(t["kimg"] / every_kimg).round().astype(int)).sort_values("kimg")
    last = t.groupby(["variant", "seed", "point"], sort=False)[metric].last().reset_index()
    means = last.groupby(["point", "variant"])[metric].mean().unstack()
    rows = []
    for point, at in means.iterrows():
        if at.isna().any() or len(at) < len(final):
            continue
        order = list(at.index)
        tau, p = stats.kendalltau(at.to_numpy(float), [final[v] for v in order])
        if np.isnan(tau):
            continue
        rows.append({"kimg": point * every_kimg, "variants": len(order),
                     "kendall_tau": float(tau), "p_value": float(p)})  # fmt: skip
    return pd.DataFrame(rows, columns=cols)


@dataclass
class SpaceAgreement:
    """How far the final table's ranking by the tracked metric agrees with its ranking by the
    headline metric: Kendall's tau-b, its p-value, and the variant whose two ranks differ
    most (ranks from 1, best first)."""

    tau: float
    p_value: float
    variants: int
    variant: str
    rank_tracked: int
    rank_metric: int


def space_agreement(tracked: dict[str, float], final: dict[str, float]) -> SpaceAgreement | None:
    """:class:`SpaceAgreement` of two variant -> seed mean maps (lower is better in both),
    over their common variants; None under three."""
    common = sorted(set(tracked) & set(final))
    if len(common) < 3:
        return None
    a = pd.Series({v: tracked[v] for v in common}).rank(method="min").astype(int)
    b = pd.Series({v: final[v] for v in common}).rank(method="min").astype(int)
    tau, p = stats.kendalltau(a, b)
    worst = (a - b).abs().idxmax()
    ranks = int(a[worst]), int(b[worst])
    return SpaceAgreement(float(tau), float(p), len(common), str(worst), *ranks)


def cheapest_budget(
    by_budget: pd.DataFrame, threshold: float = 0.8, column: str = "kendall_tau"
) -> float | None:
    """The smallest tracked budget from which every later budget's ranking agrees with the
    final one at Kendall tau >= ``threshold`` (:func:`ranking_by_budget`); None when the
    last one does not. ``column``: the tau column read; a budget without a tau there (NaN,
    as a left merge leaves it) does not agree."""
    cheapest = None
    for r in by_budget.sort_values("kimg", ascending=False).itertuples():
        if not getattr(r, column) >= threshold:  # NaN compares False both ways
            break
        cheapest = float(r.kimg)
    return cheapest
