"""`bench check`: a regression gate on metric thresholds, for CI.

A TOML file states per variant and metric a bound or a tolerance relative to a baseline::

    [dcgan]
    fid_fmnist = { max = 60.0 }
    is_fmnist = { min = 6.5 }
    [wgan-gp]
    fid_fmnist = { max_regression = 0.10 }   # at most 10% worse than the baseline

"Worse" follows the metric's declared direction. Values are means over the run's seeds. A
variant whose job diverged or failed, or that has no row, is a violation, not a crash.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.errors import BenchError
from bench.fsutil import read_toml
from bench.runs import read_results
from bench.validate import is_number
from metrics.keys import METRICS
from reports.frame import latest_rows

RULES = ("min", "max", "max_regression")


class ThresholdsError(BenchError):
    """A thresholds file that cannot be used (exit 2)."""


@dataclass(frozen=True)
class Check:
    """One evaluated rule."""

    variant: str
    metric: str
    rule: str
    limit: float
    value: float | None
    ok: bool
    note: str = ""


def load_thresholds(path: Path, variants: list[str]) -> dict[str, dict[str, dict[str, float]]]:
    """Parse and validate a thresholds file against the registered variants and metrics.

    Raises:
        ThresholdsError: unreadable TOML, an unknown variant, metric or rule, a bad number.
    """
    data = read_toml(path, ThresholdsError)
    if not data:
        raise ThresholdsError(f"{path}: no thresholds")
    out: dict[str, dict[str, dict[str, float]]] = {}
    for variant, metrics in data.items():
        if variant not in variants:
            raise ThresholdsError(
                f"{path}: unknown variant {variant!r}; valid: {', '.join(variants)}"
            )
        if not isinstance(metrics, dict) or not metrics:
            raise ThresholdsError(f"{path}: [{variant}] must map metrics to rules")
        for metric, rules in metrics.items():
            if metric not in METRICS:
                raise ThresholdsError(
                    f"{path}: [{variant}] unknown metric {metric!r}; valid: {', '.join(METRICS)}"
                )
            if not isinstance(rules, dict) or not rules:
                raise ThresholdsError(
                    f"{path}: [{variant}] {metric} must be a table like {{ max = 60.0 }}"
                )
            for rule, limit in rules.items():
                if rule not in RULES:
                    raise ThresholdsError(
                        f"{path}: [{variant}] {metric}: unknown rule {rule!r}; valid: "
                        + ", ".join(RULES)
                    )
                if not is_number(limit):  # TOML allows nan and inf; no value passes nan
                    what = (f" = {limit}: a bound must be finite" if isinstance(limit, float)
                            else " must be a number")  # fmt: skip
                    raise ThresholdsError(f"{path}: [{variant}] {metric}.{rule}{what}")
                if rule == "max_regression" and limit < 0:
                    raise ThresholdsError(f"{path}: [{variant}] {metric}: max_regression < 0")
            out.setdefault(variant, {})[metric] = {k: float(v) for k, v in rules.items()}
    return out


def _means(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per variant: status list and the mean of each metric over its ok seeds."""
    out: dict[str, dict[str, Any]] = {}
    for r in latest_rows(rows):
        variant, seed = r["variant"], int(r["seed"])
        v = out.setdefault(variant, {"bad": [], "values": {}})
        if r.get("status") != "ok":
            v["bad"].append(f"seed {seed} {r.get('status')}")
            continue
        for k, x in (r.get("metrics") or {}).items():
            if x is not None:
                v["values"].setdefault(k, []).append(float(x))
    for v in out.values():
        v["values"] = {k: sum(xs) / len(xs) for k, xs in v["values"].items()}
    return out


def evaluate(
    thresholds: dict[str, dict[str, dict[str, float]]],
    rows: list[dict[str, Any]],
    baseline: list[dict[str, Any]] | None,
) -> list[Check]:
    """Every rule against the run's means (and the baseline's, for regressions)."""
    run, base = _means(rows), _means(baseline or [])
    checks = []
    for variant, metrics in thresholds.items():
        got = run.get(variant)
        for metric, rules in metrics.items():
            for rule, limit in rules.items():
                if got is None:
                    checks.append(Check(variant, metric, rule, limit, None, False, "no result"))
                    continue
                if got["bad"]:
                    note = ", ".join(got["bad"])
                    checks.append(Check(variant, metric, rule, limit, None, False, note))
                    continue
                value = got["values"].get(metric)
                if value is None or math.isnan(value):
                    checks.append(Check(variant, metric, rule, limit, None, False, "not measured"))
                    continue
                checks.append(_one(variant, metric, rule, limit, value, base.get(variant)))
    return checks


def _one(
    variant: str, metric: str, rule: str, limit: float, value: float, base: dict | None
) -> Check:
    if rule == "min":
        return Check(variant, metric, rule, limit, value, value >= limit)
    if rule == "max":
        return Check(variant, metric, rule, limit, value, value <= limit)
    ref = (base or {}).get("values", {}).get(metric)
    if ref is None:
        return Check(variant, metric, rule, limit, value, False, "not in the baseline")
    higher = METRICS[metric].higher_is_better
    worse = (ref - value) if higher else (value - ref)
    allowed = abs(ref) * limit
    note = f"baseline {ref:.4g}, {100 * worse / abs(ref) if ref else 0:+.1f}% worse"
    return Check(variant, metric, rule, limit, value, worse <= allowed, note)


def read_baseline(path: Path) -> list[dict[str, Any]]:
    """Rows of a baseline results.jsonl (or of a run folder holding one)."""
    p = path / "results.jsonl" if path.is_dir() else path
    if not p.is_file():
        raise ThresholdsError(f"baseline {p} not found")
    rows = read_results(p)
    if not rows:
        raise ThresholdsError(f"baseline {p} has no rows")
    return rows


@dataclass(frozen=True)
class Derived:
    """The bounds of one metric derived from seed spread: ``mean -/+ sigmas * std``."""

    variant: str
    metric: str
    limits: dict[str, float]  # "min" and/or "max"
    mean: float
    std: float  # sample standard deviation over the seeds (n - 1)
    seeds: tuple[int, ...]


def derive_thresholds(
    rows: list[dict[str, Any]],
    metrics: list[str],
    sigmas: float,
    two_sided: Collection[str] = (),
    min_seeds: int = 3,
) -> list[Derived]:
    """Bounds for a single-seed gate from a run's seed spread.

    A gate that trains one seed must pass whichever seed's value it draws, so each bound sits
    ``sigmas`` sample standard deviations beyond the mean of the clean seeds, on the metric's
    bad side, or on both sides for the metrics in ``two_sided``: then a change that moves
    the recipe's numbers beyond its seed noise in either direction fails (a learning rate
    that makes a short run better is still not the recipe the baseline was measured with).
    The spread must come from the gate's own protocol (profile, sample counts, numerics);
    the bounds are only as good as the seeds behind them.

    Raises:
        ThresholdsError: an unknown metric, a variant with a failed job, fewer than
            ``min_seeds`` ok seeds, or a metric missing from a row.
    """
    unknown = [m for m in metrics if m not in METRICS]
    stray = [m for m in two_sided if m not in metrics]
    if stray:
        raise ThresholdsError(f"two-sided {', '.join(stray)}: not among the bounded metrics "
                              f"({', '.join(metrics)})")  # fmt: skip
    if unknown:
        valid = ", ".join(METRICS)
        raise ThresholdsError(f"unknown metric(s) {', '.join(unknown)}; valid: {valid}")
    if not (math.isfinite(sigmas) and sigmas > 0):
        raise ThresholdsError(f"sigmas must be a positive number, not {sigmas}")
    per: dict[str, dict[int, dict[str, Any]]] = {}
    for r in latest_rows(rows):
        variant, seed = str(r["variant"]), int(r["seed"])
        if r.get("status") != "ok":
            raise ThresholdsError(f"{variant} seed {seed} is {r.get('status')}: "
                                  "derive bounds from clean seeds only")  # fmt: skip
        per.setdefault(variant, {})[seed] = r.get("metrics") or {}
    out = []
    for variant, seeds in per.items():
        if len(seeds) < min_seeds:
            raise ThresholdsError(f"{variant}: {len(seeds)} seed(s); a spread needs at least "
                                  f"{min_seeds} (bench run --seeds {min_seeds})")  # fmt: skip
        for metric in metrics:
            values = [seeds[s].get(metric) for s in sorted(seeds)]
            if not all(is_number(v) for v in values):
                raise ThresholdsError(f"{variant}: {metric} not measured in every seed")
            mean, std = statistics.fmean(values), statistics.stdev(values)
            limits = {"min": mean - sigmas * std, "max": mean + sigmas * std}
            if metric not in two_sided:
                bad = "min" if METRICS[metric].higher_is_better else "max"
                limits = {bad: limits[bad]}
            out.append(Derived(variant, metric, limits, mean, std, tuple(sorted(seeds))))
    return out


def thresholds_toml(derived: list[Derived], sigmas: float, source: str) -> str:
    """A thresholds file for `bench check`, each bound commented with the spread behind it."""
    lines = [f"# Derived by `bench thresholds` from {source}: each bound is the mean over the",
             f"# seeds -/+ {sigmas:g} sample standard deviations (on the metric's bad side, or",
             "# on both sides where a metric has a min and a max).",
             "# Valid only for runs of the same profile, sample counts and numerics."]  # fmt: skip
    variant = None
    for d in derived:
        if d.variant != variant:
            variant = d.variant
            seeds = ",".join(map(str, d.seeds))
            lines += ["", f"# {variant}: seeds {seeds}", f"[{_toml_key(variant)}]"]
        rules = ", ".join(f"{rule} = {_number(x, 6)}" for rule, x in d.limits.items())
        lines.append(f"{d.metric} = {{ {rules} }}  "
                     f"# mean {_number(d.mean, 4)}, std {_number(d.std, 3)}")  # fmt: skip
    return "\n".join(lines) + "\n"


def _number(x: float, digits: int) -> str:
    """``x`` to ``digits`` significant digits in a form TOML reads as a float."""
    return repr(float(f"{x:.{digits}g}"))


def _toml_key(name: str) -> str:
    """A variant name as a TOML table key (quoted unless it is a bare key)."""
    bare = name.replace("-", "").replace("_", "").isalnum() and name.isascii()
    return name if bare else '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
