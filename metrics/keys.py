"""The metric registry: every reported key with its direction, group, protocol and whether it
is a column of the results table, declared once.

Scoring, reports, the regression gate and ``bench score`` read these facts from here instead
of keeping their own lists. The keys are a stable contract of ``results.jsonl``: keys may be
added, never renamed. This module imports nothing heavy, so reports can use it without torch.

Adding a metric: compute it in its family's function (:func:`metrics.suite.fmnist_metrics`,
:func:`metrics.suite.inception_metrics`, :mod:`metrics.interp`), and register its key below
with :func:`register`; tables, figures, ranks, ``bench check`` and ``bench score`` follow.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# Metric groups and the protocol section of a row that describes how each group was made.
GROUPS: dict[str, str] = {
    "fmnist": "fmnist",  # the shipped Fashion-MNIST evaluator's features
    "conditional": "fmnist",  # the evaluator on conditional samples and their labels
    "inception": "inception",  # TF-Inception pool3 and logits
    "smoothness": "smoothness",  # path lengths and latent paths of the generator
}


@dataclass(frozen=True)
class MetricKey:
    """One reported number.

    Attributes:
        name: the key in a row's ``metrics``.
        higher_is_better: the direction tables rank and the gate checks in.
        description: one line for tables and ``bench score``.
        group: one of :data:`GROUPS`.
        headline: a column of the results table (in registration order).
        spread_of: for a ``*_std`` key, the key whose spread it is (shown with it, not alone).
        protocol: the row's protocol section describing it (default: its group's).
    """

    name: str
    higher_is_better: bool
    description: str
    group: str
    headline: bool = False
    spread_of: str | None = None
    protocol: str = field(default="")

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-z][a-z0-9_]*", self.name):
            raise ValueError(f"metric key {self.name!r}: lower-case letters, digits, '_'")
        if self.group not in GROUPS:
            raise ValueError(f"metric key {self.name!r}: group {self.group!r} not in {GROUPS}")
        if not self.protocol:
            object.__setattr__(self, "protocol", GROUPS[self.group])


METRICS: dict[str, MetricKey] = {}


def register(*keys: MetricKey) -> None:
    """Add metric keys to the registry (a name registered twice is a ValueError)."""
    for key in keys:
        if key.name in METRICS:
            raise ValueError(f"metric key {key.name!r} is already registered")
        if key.spread_of is not None and key.spread_of not in METRICS:
            raise ValueError(f"{key.name!r} is the spread of unregistered {key.spread_of!r}")
        METRICS[key.name] = key


def headline() -> list[str]:
    """The results table's columns, in order."""
    return [k.name for k in METRICS.values() if k.headline]


def secondary() -> list[str]:
    """Keys reported in a second table: neither headline columns nor spreads."""
    return [k.name for k in METRICS.values() if not k.headline and k.spread_of is None]


def group_keys(group: str) -> tuple[str, ...]:
    """Every key of ``group``, spreads included."""
    return tuple(k.name for k in METRICS.values() if k.group == group)


def higher_is_better(name: str) -> bool:
    """Direction of a metric key; KeyError for an unknown key."""
    return METRICS[name].higher_is_better


def direction(name: str) -> str:
    """'higher is better' or 'lower is better' (KeyError for an unknown key)."""
    return "higher is better" if METRICS[name].higher_is_better else "lower is better"


# Evaluator family: one feature pass, metrics.suite.fmnist_metrics.
register(
    MetricKey("fid_fmnist", False, "FID on the evaluator's penultimate features (128-d)",
              "fmnist", headline=True),
    MetricKey("kid_fmnist", False, "KID (cubic polynomial kernel) on the evaluator's features",
              "fmnist", headline=True),
    MetricKey("kid_fmnist_std", False, "std of kid_fmnist over its subsets", "fmnist",
              spread_of="kid_fmnist"),
    MetricKey("is_fmnist", True, "Inception Score with the Fashion-MNIST evaluator (max 10)",
              "fmnist", headline=True),
    MetricKey("is_fmnist_std", False, "std of is_fmnist over its splits", "fmnist",
              spread_of="is_fmnist"),
    MetricKey("precision_fmnist", True, "precision (k=3 NN manifolds) on the evaluator's "
              "features", "fmnist", headline=True),
    MetricKey("recall_fmnist", True, "recall (k=3 NN manifolds) on the evaluator's features",
              "fmnist", headline=True),
    MetricKey("class_coverage", True, "share of classes with >= 50% of their uniform share",
              "fmnist", headline=True),
    MetricKey("class_entropy", True, "entropy (bits) of the evaluator's class histogram",
              "fmnist", headline=True),
)  # fmt: skip
# The same pass on conditional samples and the labels they were generated for.
register(
    MetricKey("label_accuracy", True, "share of G(z, y) the evaluator classifies as y",
              "conditional", headline=True),
    MetricKey("intra_fid_fmnist", False, "mean per-class evaluator FID (conditional variants)",
              "conditional", headline=True),
)  # fmt: skip
# Inception family: one pool3 (+ logits) pass, metrics.suite.inception_metrics.
register(
    MetricKey("fid_inception", False, "FID on TF-Inception pool3 (2048-d) vs the reference",
              "inception", headline=True),
    MetricKey("kid_inception", False, "KID (cubic polynomial kernel) on TF-Inception pool3",
              "inception", headline=True),
    MetricKey("kid_inception_std", False, "std of kid_inception over its subsets", "inception",
              spread_of="kid_inception"),
    MetricKey("is_inception", True, "Inception Score, TF-Inception logits, 299x299, 10 splits",
              "inception", headline=True),
    MetricKey("is_inception_std", False, "std of is_inception over its splits", "inception",
              spread_of="is_inception"),
    MetricKey("precision_inception", True, "precision (k=3 NN manifolds) on pool3",
              "inception"),
    MetricKey("recall_inception", True, "recall (k=3 NN manifolds) on pool3", "inception"),
)  # fmt: skip
# Smoothness family: metrics.interp (torch-fidelity's PPL and the latent paths).
register(
    MetricKey("ppl", False, "perceptual path length, evaluator-feature distance "
              "(torch-fidelity)", "smoothness", headline=True),
    MetricKey("ppl_std", False, "std of the per-pair path lengths behind ppl", "smoothness",
              spread_of="ppl"),
    MetricKey("ppl_lpips", False, "perceptual path length with LPIPS-VGG16 (needs its "
              "weights)", "smoothness"),
    MetricKey("interp_discontinuity", False, "max step / mean step along latent paths",
              "smoothness", headline=True, protocol="latent_paths"),
)  # fmt: skip
