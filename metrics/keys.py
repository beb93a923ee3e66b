"""The metric registry: every metric family, and every reported key with its direction,
group, protocol and whether it is a column of the results table.

Scoring, reports, the regression gate and ``bench score`` read these facts from here instead
of keeping their own lists. The keys are a stable contract of ``results.jsonl``: keys may be
added, never renamed. Nothing here imports torch, so reports can use it without torch.

Adding a metric: write one module holding its keys and how it is computed (a
:class:`metrics.family.Family` named ``FAMILY``; ``metrics/kid.py`` is a short example), and
add that module to :data:`FAMILY_MODULES`. The feature passes, the row, tables, figures,
ranks, ``bench check`` and ``bench score`` follow.
"""

from __future__ import annotations

from metrics import cas, classes, conditional, copying, dnc, fid, isc, kid, prc, smoothness
from metrics.family import GROUPS, Family, MetricKey

# The families in the order they compute (and, within a group, the order of their columns).
FAMILY_MODULES = (fid, kid, isc, prc, dnc, copying, classes, conditional, cas, smoothness)
FAMILIES: tuple[Family, ...] = tuple(m.FAMILY for m in FAMILY_MODULES)

METRICS: dict[str, MetricKey] = {}


def register(*keys: MetricKey) -> None:
    """Add metric keys to the registry (a name registered twice is a ValueError)."""
    for key in keys:
        if key.name in METRICS:
            raise ValueError(f"metric key {key.name!r} is already registered")
        if key.spread_of is not None and key.spread_of not in METRICS:
            raise ValueError(f"{key.name!r} is the spread of unregistered {key.spread_of!r}")
        METRICS[key.name] = key


def _ordered() -> list[MetricKey]:
    """Keys grouped as :data:`GROUPS` lists them, in registration order within a group."""
    rank = {g: i for i, g in enumerate(GROUPS)}
    return sorted(METRICS.values(), key=lambda k: rank[k.group])  # sorted() is stable


def headline() -> list[str]:
    """The results table's columns, in order."""
    return [k.name for k in _ordered() if k.headline]


def secondary() -> list[str]:
    """Keys reported in a second table: neither headline columns nor spreads."""
    return [k.name for k in _ordered() if not k.headline and k.spread_of is None]


def group_keys(group: str) -> tuple[str, ...]:
    """Every key of ``group``, spreads included."""
    return tuple(k.name for k in METRICS.values() if k.group == group)


def direction(name: str) -> str:
    """'higher is better' or 'lower is better' (KeyError for an unknown key)."""
    return "higher is better" if METRICS[name].higher_is_better else "lower is better"


def ranking(name: str) -> str:
    """The direction tables rank ``name`` in, or why they do not rank it."""
    key = METRICS[name]
    return direction(name) if key.ranked else f"not ranked: {key.unranked}"


def families(kind: str) -> tuple[Family, ...]:
    """The registered families of one kind (``features`` or ``generator``)."""
    return tuple(f for f in FAMILIES if f.kind == kind)


for _family in FAMILIES:
    register(*_family.keys)
_grouped = _ordered()  # METRICS itself in group order, as tables list the keys
METRICS.clear()
METRICS.update((k.name, k) for k in _grouped)
