"""Seaborn figures of a report, each drawn from the tidy frame (or a loss frame) and returned
as PNG bytes, so the HTML page can embed them and tests can decode them.

One style for all: seaborn's "whitegrid" theme, the colour-blind palette, variants in the
order of the frame, titles that say what is plotted and in which direction is better.
"""

from __future__ import annotations

import io
from collections.abc import Collection

import matplotlib

matplotlib.use("Agg")  # files only, never a window

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from metrics.common import CLASS_NAMES
from metrics.keys import METRICS, direction
from reports.frame import APART_MARK, protocol_groups

sns.set_theme(style="whitegrid", palette="colorblind", context="notebook")


def _png(fig: plt.Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def _direction(metric: str) -> str:
    return direction(metric) if metric in METRICS else ""


def metric_bars(frame: pd.DataFrame, metric: str, run: str | None = None) -> bytes | None:
    """Bars of ``metric`` per variant (mean over seeds) with 95% t-interval error bars and
    each seed as a dot; one hue per run when several runs are shown. Variants scored under
    another protocol (:func:`protocol_groups`) stand right of a dashed line, marked †."""
    fig = bar_figure(frame, metric, run)
    return None if fig is None else _png(fig)


def bar_figure(frame: pd.DataFrame, metric: str, run: str | None = None) -> plt.Figure | None:
    """The figure of :func:`metric_bars`, open (tests read its axes); None without data."""
    data = frame[frame["metric"] == metric]
    if run is not None:
        data = data[data["run"] == run]
    if data.empty:
        return None
    main, apart, against = protocol_groups(data, metric)
    order = main + apart
    several = data["run"].nunique() > 1
    fig, ax = plt.subplots(figsize=(max(5.0, 0.75 * len(order) + 2), 3.6))
    sns.barplot(
        data=data, x="variant", y="value", hue="run" if several else None, order=order,
        errorbar=("ci", 95), capsize=0.15, ax=ax, alpha=0.85,
    )  # fmt: skip
    dots = {"hue": "run", "palette": "dark:black", "dodge": True} if several else {"color": "black"}
    sns.stripplot(
        data=data, x="variant", y="value", order=order, size=3, ax=ax, legend=False, **dots
    )
    title = f"{metric} ({_direction(metric)})"
    if apart:
        ax.axvline(len(main) - 0.5, color="0.35", linestyle="--", linewidth=1)
        ax.set_xticks(range(len(order)), [*main, *(f"{v} {APART_MARK}" for v in apart)])
        title += f"\n{APART_MARK} scored vs {against}: ranked apart"
    ax.set_title(title)
    ax.set_xlabel("")
    ax.set_ylabel(metric)
    ax.tick_params(axis="x", rotation=35)
    for label in ax.get_xticklabels():
        label.set_horizontalalignment("right")
    return fig


def is_vs_fid(frame: pd.DataFrame, fid: str = "fid_fmnist", is_: str = "is_fmnist") -> bytes | None:
    """One point per (variant, seed): IS against FID; good models sit top-left."""
    wide = frame[frame["metric"].isin([fid, is_])].pivot_table(
        index=["run", "variant", "seed"], columns="metric", values="value"
    )
    if wide.empty or fid not in wide or is_ not in wide:
        return None
    wide = wide.reset_index()
    _, apart, against = protocol_groups(frame, fid)
    style = "run" if wide["run"].nunique() > 1 else None
    if apart and style is None:  # other-protocol variants get their own marker
        scored = f"{APART_MARK} vs {against} (ranked apart)"
        wide["scored"] = ["main protocol" if v not in apart else scored for v in wide["variant"]]
        style = "scored"
    fig, ax = plt.subplots(figsize=(5.5, 4.0))
    sns.scatterplot(data=wide, x=fid, y=is_, hue="variant", style=style, s=60, ax=ax)
    ax.set_title(f"{is_} vs {fid} (top-left is better)")
    ax.legend(fontsize=7, bbox_to_anchor=(1.02, 1), loc="upper left")
    return _png(fig)


def loss_curves(losses: pd.DataFrame) -> bytes | None:
    """Generator and discriminator losses against kimg, one panel per variant (seed 0 when
    several), smoothed over 25 steps; ``losses`` has columns variant, seed, kimg, d_loss,
    g_loss."""
    if losses.empty:
        return None
    data = losses[losses["seed"] == losses.groupby("variant")["seed"].transform("min")]
    long = data.melt(id_vars=["variant", "kimg"], value_vars=["d_loss", "g_loss"], var_name="loss")
    long["value"] = long.groupby(["variant", "loss"])["value"].transform(
        lambda s: s.rolling(25, min_periods=1).mean()
    )
    grid = sns.relplot(
        data=long, x="kimg", y="value", hue="loss", col="variant", col_wrap=4, kind="line",
        height=2.2, aspect=1.3, facet_kws={"sharey": False},
    )  # fmt: skip
    grid.set_titles("{col_name}")
    grid.figure.suptitle("training losses (25-step mean)", y=1.02)
    return _png(grid.figure)


def metric_vs_kimg(tracked: pd.DataFrame, apart: Collection[str] = ()) -> bytes | None:
    """FID(fmnist) (log scale) and IS(fmnist) of G_ema against kimg during training, one line
    per variant, the band a 95% interval over seeds; ``tracked`` has columns variant, seed,
    kimg, fid_fmnist, is_fmnist (and run, one line style per run when several). Variants in
    ``apart`` (scored against their own classes' test images) are drawn dashed, marked †."""
    if tracked.empty:
        return None
    several = "run" in tracked and tracked["run"].nunique() > 1
    style = "run" if several else None
    apart = [v for v in apart if v in set(tracked["variant"])]
    if apart and not several:
        tracked = tracked.assign(reference=[
            f"{APART_MARK} its classes' test images" if v in apart else "the test split"
            for v in tracked["variant"]
        ])  # fmt: skip
        style = "reference"
    fig, axes = plt.subplots(1, 2, figsize=(11.0, 3.8))
    for ax, metric in zip(axes, ("fid_fmnist", "is_fmnist"), strict=True):
        sns.lineplot(
            data=tracked, x="kimg", y=metric, hue="variant", style=style,
            errorbar=("ci", 95), marker="o", markersize=4, ax=ax, legend=ax is axes[-1],
        )  # fmt: skip
        ax.set_title(f"{metric} during training ({_direction(metric)})")
        if metric.startswith("fid"):
            ax.set_yscale("log")
    handles, labels = axes[-1].get_legend_handles_labels()
    if handles:
        axes[-1].legend(handles, labels, loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize=8)
    return _png(fig)


def capacity_study(
    frame: pd.DataFrame, pair: tuple[str, str] = ("dcgan", "dcgan-small")
) -> bytes | None:
    """Seed 000's capacity study: the two widths side by side on quality, size and speed."""
    data = frame[frame["variant"].isin(pair)]
    if data["variant"].nunique() < 2:
        return None
    panels = [
        ("fid_fmnist", data[data["metric"] == "fid_fmnist"][["variant", "value"]]),
        ("is_fmnist", data[data["metric"] == "is_fmnist"][["variant", "value"]]),
    ]
    jobs = data.drop_duplicates(["variant", "seed"])
    panels.append(
        (
            "G+D parameters",
            jobs.assign(value=jobs["params_g"] + jobs["params_d"])[["variant", "value"]],
        )
    )
    panels.append(("training img/s", jobs.assign(value=jobs["img_per_s"])[["variant", "value"]]))
    fig, axes = plt.subplots(1, len(panels), figsize=(3.0 * len(panels), 3.0))
    for ax, (title, d) in zip(axes, panels, strict=True):
        sns.barplot(data=d, x="variant", y="value", order=list(pair), errorbar=("ci", 95), ax=ax)
        ax.set_title(title)
        ax.set_xlabel("")
        ax.set_ylabel("")
    fig.suptitle("seed 000's capacity study: NGF/NDF 64 vs 32", y=1.04)
    return _png(fig)


def per_class_heatmap(per_class: pd.DataFrame) -> bytes | None:
    """Per-class FID(fmnist) of conditional variants (rows: variant, columns: class; mean over
    seeds); ``per_class`` has columns variant, seed, class_id, fid."""
    if per_class.empty:
        return None
    table = per_class.pivot_table(index="variant", columns="class_id", values="fid", aggfunc="mean")
    table.columns = [CLASS_NAMES[int(c)] for c in table.columns]
    fig, ax = plt.subplots(figsize=(1.0 + 0.75 * table.shape[1], 0.9 + 0.5 * table.shape[0]))
    sns.heatmap(table, annot=True, fmt=".0f", cmap="rocket_r", cbar_kws={"label": "FID"}, ax=ax)
    ax.set_title("per-class FID(fmnist) of conditional variants (lower is better)")
    ax.set_xlabel("")
    ax.set_ylabel("")
    return _png(fig)


def sweep_params(
    frame: pd.DataFrame, metric: str, params: list[str], log_params: set[str]
) -> bytes | None:
    """The sweep metric against each searched hyper-parameter (one panel each), every
    (setting, seed) a point coloured by variant; numeric values on a (log) axis, others as
    categories. ``frame`` has columns variant, value and one per parameter (strings)."""
    data = frame.dropna(subset=["value"])
    if data.empty or not params:
        return None
    fig, axes = plt.subplots(1, len(params), figsize=(4.2 * len(params), 3.4), squeeze=False)
    for ax, param in zip(axes[0], params, strict=True):
        numeric = pd.to_numeric(data[param], errors="coerce")
        if numeric.notna().all():
            sns.scatterplot(x=numeric, y=data["value"], hue=data["variant"], ax=ax, s=45)
            if param in log_params or (numeric.min() > 0 and numeric.max() / numeric.min() >= 8):
                ax.set_xscale("log")
        else:
            sns.stripplot(x=data[param].astype(str), y=data["value"], hue=data["variant"],
                          ax=ax, size=6, jitter=0.15)  # fmt: skip
        ax.set_xlabel(param)
        ax.set_ylabel(metric)
        if ax.get_legend() is not None and (len(params) > 1 and ax is not axes[0][-1]):
            ax.get_legend().remove()
    fig.suptitle(f"{metric} ({_direction(metric)}) against each searched hyper-parameter")
    fig.tight_layout()
    return _png(fig)
