"""Metric result keys, each with its direction, so reports rank without special cases.

The keys are a stable contract of ``results.jsonl``: keys may be added, never renamed.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MetricKey:
    """One reported number."""

    name: str
    higher_is_better: bool
    description: str


_ALL = [
    MetricKey("is_inception", True, "Inception Score, TF-Inception logits, 299x299, 10 splits"),
    MetricKey("is_inception_std", False, "std of is_inception over its splits"),
    MetricKey("fid_inception", False, "FID on TF-Inception pool3 (2048-d) vs the reference"),
    MetricKey("kid_inception", False, "KID (cubic polynomial kernel) on TF-Inception pool3"),
    MetricKey("kid_inception_std", False, "std of kid_inception over its subsets"),
    MetricKey("precision_inception", True, "precision (k=3 NN manifolds) on pool3"),
    MetricKey("recall_inception", True, "recall (k=3 NN manifolds) on pool3"),
    MetricKey("is_fmnist", True, "Inception Score with the Fashion-MNIST evaluator (max 10)"),
    MetricKey("is_fmnist_std", False, "std of is_fmnist over its splits"),
    MetricKey("fid_fmnist", False, "FID on the evaluator's penultimate features (128-d)"),
    MetricKey("kid_fmnist", False, "KID on the evaluator's penultimate features"),
    MetricKey("kid_fmnist_std", False, "std of kid_fmnist over its subsets"),
    MetricKey("precision_fmnist", True, "precision (k=3) on the evaluator's features"),
    MetricKey("recall_fmnist", True, "recall (k=3) on the evaluator's features"),
    MetricKey("class_coverage", True, "share of classes with >= 50% of their uniform share"),
    MetricKey("class_entropy", True, "entropy (bits) of the evaluator's class histogram"),
    MetricKey("ppl", False, "perceptual path length, evaluator-feature distance (torch-fidelity)"),
    MetricKey("ppl_std", False, "std of the per-pair path lengths behind ppl"),
    MetricKey("ppl_lpips", False, "perceptual path length with LPIPS-VGG16 (needs its weights)"),
    MetricKey("interp_discontinuity", False, "max step / mean step along latent paths"),
    MetricKey("intra_fid_fmnist", False, "mean per-class evaluator FID (conditional variants)"),
    MetricKey("label_accuracy", True, "share of G(z, y) the evaluator classifies as y"),
]
METRICS: dict[str, MetricKey] = {k.name: k for k in _ALL}


def higher_is_better(name: str) -> bool:
    """Direction of a metric key; KeyError for an unknown key."""
    return METRICS[name].higher_is_better
