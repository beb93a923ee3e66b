"""``bench sweep SPEC.toml``: a hyper-parameter search in Lucic et al.'s two phases.

Phase 1 trains every setting of the search space with one seed; phase 2 reruns the best
``top`` settings of each variant (ranked by the spec's metric in its registered direction)
with ``seeds`` seeds. Every setting is an ordinary run folder ``SWEEP/sNN`` made with its
``--set`` overrides, so resume, ``bench report``, ``bench check`` and ``bench status`` work
on it unchanged; ``SWEEP/sweep.json`` records the spec and the settings, and a rerun with the
same spec resumes where it stopped. Any executor runs it: one setting after another locally
(``--jobs N`` runs a phase-2 setting's seeds at once), or every setting of a phase submitted
at once to Slurm or submitit-local.

A spec (TOML)::

    variants = ["dcgan"]
    profile = "ci"
    metric = "fid_fmnist"
    search = "grid"            # or "random", with settings = N and sample_seed
    top = 2                    # phase 2: the best 2 settings of each variant ...
    seeds = 3                  # ... with seeds 0, 1, 2
    [set]                      # fixed overrides for every setting (optional)
    augment = "none"
    [space]                    # a list is a grid axis; a table is a range (random search)
    "optim.lr" = [1e-4, 2e-4, 5e-4, 1e-3]    # G's and D's rate together (or optim.lr_g)
    "optim.betas" = ["0.5,0.999", "0.0,0.9"]
    # "optim.lr" = { low = 1e-5, high = 1e-3, log = true }
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.errors import BenchError
from bench.fsutil import atomic_write_json, read_json, read_toml
from bench.validate import is_int, is_number, number_problem, shape_problem

SPEC_KEYS = {"name", "variants", "profile", "metric", "search", "settings", "sample_seed",
             "top", "seeds", "kimg", "set", "space"}  # fmt: skip
SWEEP_FILE = "sweep.json"


class SweepError(BenchError):
    """A bad sweep spec, or a sweep folder made from another spec."""


@dataclass(frozen=True)
class Axis:
    """One searched key: grid ``values``, or a ``low``..``high`` range (log or linear,
    integer or real) for random search."""

    key: str
    values: tuple[Any, ...] = ()
    low: float | None = None
    high: float | None = None
    log: bool = False
    integer: bool = False

    @property
    def is_range(self) -> bool:
        """Whether this axis is sampled from a range rather than listed."""
        return self.low is not None


@dataclass(frozen=True)
class SweepSpec:
    """A parsed, checked spec."""

    variants: tuple[str, ...]
    profile: str
    metric: str
    axes: tuple[Axis, ...]
    search: str = "grid"
    settings: int | None = None  # random search: how many settings
    sample_seed: int = 0
    top: int = 2
    seeds: int = 3
    kimg: float | None = None
    fixed: tuple[tuple[str, str], ...] = ()
    name: str = "sweep"
    higher_is_better: bool = False  # the metric's registered direction
    source: dict[str, Any] = field(default_factory=dict, compare=False)

    def points(self) -> list[dict[str, str]]:
        """Every setting as ``--set`` strings, in a fixed order (grid: product in the spec's
        key order; random: ``settings`` draws from a generator seeded with ``sample_seed``)."""
        if self.search == "grid":
            grid = itertools.product(*(a.values for a in self.axes))
            return [{a.key: _text(v) for a, v in zip(self.axes, combo, strict=True)}
                    for combo in grid]  # fmt: skip
        import numpy as np

        rng = np.random.default_rng(self.sample_seed)
        out = []
        for _ in range(self.settings or 0):
            point = {}
            for a in self.axes:
                if not a.is_range:
                    point[a.key] = _text(a.values[int(rng.integers(len(a.values)))])
                    continue
                assert a.low is not None and a.high is not None
                u = rng.uniform()
                v = (math.exp(math.log(a.low) + u * (math.log(a.high) - math.log(a.low)))
                     if a.log else a.low + u * (a.high - a.low))  # fmt: skip
                point[a.key] = str(round(v)) if a.integer else f"{v:.4g}"
            out.append(point)
        return out


def _text(v: Any) -> str:
    """A spec value as the string ``--set`` takes (lists become comma-separated)."""
    if isinstance(v, list | tuple):
        return ",".join(_text(x) for x in v)
    if isinstance(v, bool):
        return str(v).lower()
    return f"{v:g}" if isinstance(v, float) else str(v)


def load_spec(path: Path) -> SweepSpec:
    """Parse and check a spec file.

    Raises:
        SweepError: unreadable TOML, an unknown key, a wrong type, an empty grid, an
            impossible range, an unknown variant/profile/metric, an unranked metric, or a
            ``set``/``space`` key that does not fit a variant.
    """
    return parse_spec(read_toml(path, SweepError), str(path))


def parse_spec(raw: dict[str, Any], where: str = "spec") -> SweepSpec:
    """A checked :class:`SweepSpec` from a parsed TOML document (see :func:`load_spec`)."""
    import models
    from bench.profiles import PROFILES
    from metrics.keys import METRICS

    def bad(message: str) -> SweepError:
        return SweepError(f"{where}: {message}")

    unknown = sorted(set(raw) - SPEC_KEYS)
    if unknown:
        raise bad(f"unknown key(s) {unknown}; a spec has {sorted(SPEC_KEYS)}")
    variants = raw.get("variants")
    if isinstance(variants, str):
        variants = [variants]
    if (
        not isinstance(variants, list)
        or not variants
        or not all(isinstance(v, str) for v in variants)
    ):
        raise bad("variants must be a non-empty list of variant names")
    for v in variants:
        if v not in models.variant_names():
            raise bad(f"unknown variant {v!r}")
    profile = raw.get("profile", "ci")
    if profile not in PROFILES:
        raise bad(f"unknown profile {profile!r}; one of {sorted(PROFILES)}")
    metric = raw.get("metric", "fid_fmnist")
    key = METRICS.get(metric) if isinstance(metric, str) else None
    if key is None:
        raise bad(f"unknown metric {metric!r}")
    if key.unranked:
        raise bad(f"metric {metric!r} is not ranked ({key.unranked}); rank by another")
    search = raw.get("search", "grid")
    if search not in ("grid", "random"):
        raise bad(f"search must be 'grid' or 'random', got {search!r}")
    space = raw.get("space")
    if not isinstance(space, dict) or not space:
        raise bad("[space] must name at least one key to search")
    axes = tuple(_axis(k, v, search, bad) for k, v in space.items())
    settings = raw.get("settings")
    if search == "random":
        if not is_int(settings) or settings < 1:
            raise bad("random search needs settings = N (an integer >= 1)")
    elif settings is not None:
        n = math.prod(len(a.values) for a in axes)
        if settings != n:
            raise bad(f"the grid has {n} settings; drop 'settings' or make it {n}")
    fixed = raw.get("set", {})
    if not isinstance(fixed, dict):
        raise bad("[set] must be a table of fixed overrides")
    ints = {"top": raw.get("top", 2), "seeds": raw.get("seeds", 3),
            "sample_seed": raw.get("sample_seed", 0)}  # fmt: skip
    for name, value in ints.items():
        if not is_int(value) or value < (0 if name == "sample_seed" else 1):
            raise bad(f"{name} must be an integer >= {0 if name == 'sample_seed' else 1}")
    kimg = raw.get("kimg")
    if kimg is not None and number_problem("kimg", kimg, 0, above=True):
        raise bad(str(number_problem("kimg", kimg, 0, above=True)))
    name = raw.get("name", "sweep")
    if not isinstance(name, str):
        raise bad("name must be a string")
    spec = SweepSpec(
        variants=tuple(dict.fromkeys(variants)), profile=profile, metric=metric, axes=axes,
        search=search, settings=settings, sample_seed=ints["sample_seed"], top=ints["top"],
        seeds=ints["seeds"], kimg=kimg, fixed=tuple((k, _text(v)) for k, v in fixed.items()),
        name=name, higher_is_better=bool(key.higher_is_better), source=raw,
    )  # fmt: skip
    _check_fits(spec, bad)
    return spec


def _axis(key: str, value: Any, search: str, bad: Callable[[str], SweepError]) -> Axis:
    if isinstance(value, list):
        if not value:
            raise bad(f"space key {key!r}: empty grid")

        def fits(v: Any) -> bool:
            return isinstance(v, str) or is_number(v) or (isinstance(v, list) and all(map(fits, v)))

        if not all(fits(v) for v in value):
            raise bad(f"space key {key!r}: values must be finite numbers, strings or lists")
        return Axis(key, tuple(value))
    if isinstance(value, dict):
        if search != "random":
            raise bad(f"space key {key!r}: a range needs search = 'random'")
        extra = sorted(set(value) - {"low", "high", "log", "integer"})
        if extra:
            raise bad(f"space key {key!r}: unknown range field(s) {extra}")
        low, high = value.get("low"), value.get("high")
        if not (is_number(low) and is_number(high)):
            raise bad(f"space key {key!r}: a range needs finite numbers low and high, "
                      f"got {low!r}..{high!r}")  # fmt: skip
        log, integer = value.get("log", False), value.get("integer", False)
        if not isinstance(log, bool) or not isinstance(integer, bool):
            raise bad(f"space key {key!r}: log and integer are true or false")
        if not low < high:
            raise bad(f"space key {key!r}: impossible range, low {low} is not below high {high}")
        if log and low <= 0:
            raise bad(f"space key {key!r}: a log range needs low > 0, got {low}")
        return Axis(key, (), float(low), float(high), log, integer)
    raise bad(f"space key {key!r}: give a list of values or a table {{low, high, log}}")


def _check_fits(spec: SweepSpec, bad: Callable[[str], SweepError]) -> None:
    """Every setting's overrides must fit every variant (caught before anything is written:
    a value of the wrong type anywhere in a grid would otherwise stop the sweep midway)."""
    from models.registry import resolve_variant

    points = spec.points()
    for v in spec.variants:
        for point in points:
            try:
                resolve_variant(v, False, {**dict(spec.fixed), **point})
            except ValueError as exc:
                raise bad(f"{v}: {exc}") from None


# ---------------------------------------------------------------------- the sweep folder


def setting_dir(sweep: Path, index: int) -> Path:
    """Run folder of setting ``index``."""
    return sweep / f"s{index:02d}"


def prepare(spec: SweepSpec, sweep: Path) -> list[dict[str, str]]:
    """Write (or check) SWEEP/sweep.json; return the settings.

    Raises:
        SweepError: the folder holds a sweep made from another spec.
    """
    points = spec.points()
    record = {"name": spec.name, "spec": spec.source, "metric": spec.metric,
              "higher_is_better": spec.higher_is_better,
              "settings": [{"id": setting_dir(sweep, i).name, "overrides": p}
                           for i, p in enumerate(points)]}  # fmt: skip
    path = sweep / SWEEP_FILE
    old = read_sweep(sweep)
    if old is not None and old.get("spec") != spec.source:
        raise SweepError(f"{sweep} holds a sweep made from another spec; give the same "
                         "spec to resume it, or a new --out folder")  # fmt: skip
    sweep.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, record)
    return points


def read_sweep(sweep: Path) -> dict[str, Any] | None:
    """SWEEP/sweep.json, or None where the folder is not a sweep.

    Raises:
        SweepError: the file is unreadable, not JSON, or not shaped like a sweep record.
    """
    path = sweep / SWEEP_FILE
    if not path.is_file():
        return None
    record = read_json(path, SweepError)
    problem = _record_problem(record)
    if problem:
        raise SweepError(f"{path}: not a sweep record of fmgan-bench ({problem}); restore it "
                         "or use a new --out folder")  # fmt: skip
    return record


def _record_problem(record: Any) -> str | None:
    """What makes ``record`` unusable as SWEEP/sweep.json, or None."""
    fields = (("spec", dict), ("metric", str), ("higher_is_better", bool), ("settings", list))
    problem = shape_problem(record, fields)
    if problem:
        return problem
    for i, s in enumerate(record["settings"]):
        if not (isinstance(s, dict) and isinstance(s.get("id"), str)
                and isinstance(s.get("overrides"), dict)):  # fmt: skip
            return f"settings[{i}] is not {{id, overrides}}"
        if "/" in s["id"] or s["id"] in ("", ".", ".."):
            return f"settings[{i}] id {s['id']!r} is not a folder name"
    phase2 = record.get("phase2", {})
    if not isinstance(phase2, dict) or not all(
        isinstance(v, list) and all(isinstance(x, str) for x in v) for v in phase2.values()
    ):
        return "'phase2' is not a table of setting ids"
    return None


def scores(sweep: Path, record: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per (setting, variant, seed) with a finished row: the setting's overrides,
    the status and the sweep metric (None when missing, failed or diverged)."""
    from bench.runs import RunFolder

    out = []
    for s in record["settings"]:
        run = RunFolder(sweep / s["id"])
        if not run.results_path.is_file():
            continue
        for (variant, seed), row in sorted(run.latest().items()):
            value = (row.get("metrics") or {}).get(record["metric"])
            ok = row.get("status") == "ok" and isinstance(value, int | float)
            out.append({"setting": s["id"], "variant": variant, "seed": seed,
                        "status": row.get("status"), "value": value if ok else None,
                        **s["overrides"]})  # fmt: skip
    return out


def best_settings(
    record: dict[str, Any], rows: list[dict[str, Any]], top: int
) -> dict[str, list[str]]:
    """Per variant, the ids of its ``top`` best settings by their seed-0 value (phase 1);
    settings without a value (failed, diverged, missing) never qualify."""
    hib = bool(record["higher_is_better"])
    out: dict[str, list[str]] = {}
    for variant in dict.fromkeys(r["variant"] for r in rows):
        scored = [r for r in rows if r["variant"] == variant and r["seed"] == 0
                  and r["value"] is not None]  # fmt: skip
        scored.sort(key=lambda r: -r["value"] if hib else r["value"])
        out[variant] = [r["setting"] for r in scored[:top]]
    return out


def run_sweep(
    spec: SweepSpec,
    sweep: Path,
    execute_setting: Callable[[Path, tuple[str, ...], tuple[int, ...], dict[str, str]], None],
    finish_phase: Callable[[], None],
    echo: Callable[[str], None],
) -> dict[str, list[str]]:
    """Both phases; returns each variant's phase-2 settings.

    ``execute_setting(run_dir, variants, seeds, overrides)`` runs (or submits) one setting's
    jobs; ``finish_phase()`` waits for submitted jobs (a no-op when they ran in place).
    """
    points = prepare(spec, sweep)
    echo(f"sweep {spec.name}: {len(points)} setting(s) x {len(spec.variants)} variant(s), "
         f"ranked by {spec.metric} ({'higher' if spec.higher_is_better else 'lower'} is "
         f"better); phase 2: best {spec.top} x {spec.seeds} seed(s)")  # fmt: skip
    for i, point in enumerate(points):
        label = " ".join(f"{k}={v}" for k, v in point.items())
        echo(f"phase 1, {setting_dir(sweep, i).name}: {label}")
        execute_setting(setting_dir(sweep, i), spec.variants, (0,), {**dict(spec.fixed), **point})
    finish_phase()
    record = read_sweep(sweep)
    assert record is not None
    best = best_settings(record, scores(sweep, record), spec.top)
    by_id = {s["id"]: s["overrides"] for s in record["settings"]}
    for variant, ids in best.items():
        for sid in ids:
            echo(f"phase 2, {sid} ({variant}): seeds 0..{spec.seeds - 1}")
            execute_setting(sweep / sid, (variant,), tuple(range(spec.seeds)),
                            {**dict(spec.fixed), **by_id[sid]})  # fmt: skip
    finish_phase()
    record["phase2"] = best
    atomic_write_json(sweep / SWEEP_FILE, record)
    return best
