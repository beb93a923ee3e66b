"""Kernel Inception Distance (Binkowski et al. 2018): the unbiased MMD^2 with a cubic
polynomial kernel, averaged over random subsets (torch-fidelity's estimator), on both passes."""

from __future__ import annotations

from typing import Any

from metrics.family import Family, FeatureContext, MetricKey


def compute(ctx: FeatureContext) -> tuple[dict[str, float | None], dict[str, Any]]:
    """KID mean and std over ``kid_subsets`` subsets of ``kid_subset_size`` (lowered to the
    smaller side's size, and recorded)."""
    from torch_fidelity.metric_kid import kid_features_to_metric

    gen, ref, s = ctx.gen["features"], ctx.ref["features"], ctx.settings
    size = min(s.kid_subset_size, len(gen), len(ref))
    kid = kid_features_to_metric(
        gen, ref, kid_subsets=s.kid_subsets, kid_subset_size=size, rng_seed=s.metric_seed,
        verbose=False,
    )  # fmt: skip
    values = {
        ctx.key("kid"): float(kid["kernel_inception_distance_mean"]),
        ctx.key("kid") + "_std": float(kid["kernel_inception_distance_std"]),
    }
    return values, {"kid_subset_size": size}


FAMILY = Family(
    "kid",
    (
        MetricKey("kid_fmnist", False, "KID (cubic polynomial kernel) on the evaluator's "
                  "features", "fmnist", headline=True),
        MetricKey("kid_fmnist_std", False, "std of kid_fmnist over its subsets", "fmnist",
                  spread_of="kid_fmnist"),
        MetricKey("kid_inception", False, "KID (cubic polynomial kernel) on TF-Inception "
                  "pool3", "inception", headline=True),
        MetricKey("kid_inception_std", False, "std of kid_inception over its subsets",
                  "inception", spread_of="kid_inception"),
    ),
    compute,
)  # fmt: skip
