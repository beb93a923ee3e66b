"""Frechet distance between Gaussians fitted to generated and reference features (Heusel et
al. 2017), with torch-fidelity's statistics and formula, on both feature passes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from metrics.family import Family, FeatureContext, MetricInputError, MetricKey

if TYPE_CHECKING:
    import torch


def fid(f1: torch.Tensor, f2: torch.Tensor) -> float:
    """FID between two feature sets (torch-fidelity's statistics and formula)."""
    from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric

    s1, s2 = fid_features_to_statistics(f1), fid_features_to_statistics(f2)
    return float(fid_statistics_to_metric(s1, s2, False)["frechet_inception_distance"])


def compute(ctx: FeatureContext) -> tuple[dict[str, float | None], dict[str, Any]]:
    """FID of the pass; notes whether N <= the feature dimension (a singular covariance)."""
    gen, ref = ctx.gen["features"], ctx.ref["features"]
    n1, n2 = len(gen), len(ref)
    if min(n1, n2) < 2:
        raise MetricInputError(f"FID needs at least 2 samples per side, got {n1} and {n2}")
    notes = {"fid_rank_deficient": min(n1, n2) <= gen.shape[1]}
    return {ctx.key("fid"): fid(gen, ref)}, notes


FAMILY = Family(
    "fid",
    (
        MetricKey("fid_fmnist", False, "FID on the evaluator's penultimate features (128-d)",
                  "fmnist", headline=True),
        MetricKey("fid_inception", False, "FID on TF-Inception pool3 (2048-d) vs the "
                  "reference", "inception", headline=True),
    ),
    compute,
)  # fmt: skip
