"""Kernel Inception Distance (Binkowski et al. 2018): the unbiased MMD^2 with a cubic
polynomial kernel, averaged over random subsets (torch-fidelity's estimator, given float64
features so that the kernel sums are float64), on both passes."""

from __future__ import annotations

from typing import Any

from metrics.family import Family, FeatureContext, MetricKey


def compute(ctx: FeatureContext) -> tuple[dict[str, float | None], dict[str, Any]]:
    """KID mean over ``kid_subsets`` subsets of ``kid_subset_size`` (lowered to the smaller
    side's size, and recorded), and its std over the subsets unless a subset is a whole side:
    then every subset holds that side's samples, the std shows only the other side's
    resampling (none at all when both sides are whole), and it is not reported."""
    from torch_fidelity.metric_kid import kid_features_to_metric

    gen, ref, s = ctx.gen["features"], ctx.ref["features"], ctx.settings
    size = min(s.kid_subset_size, len(gen), len(ref))
    kid = kid_features_to_metric(
        gen.double(), ref.double(), kid_subsets=s.kid_subsets, kid_subset_size=size,
        rng_seed=s.metric_seed, verbose=False,
    )  # fmt: skip
    whole = size in (len(gen), len(ref))
    values = {
        ctx.key("kid"): float(kid["kernel_inception_distance_mean"]),
        ctx.key("kid") + "_std": None if whole else float(kid["kernel_inception_distance_std"]),
    }
    notes: dict[str, Any] = {"kid_subset_size": size}
    if whole:
        notes["kid_std"] = "not reported: a subset is a whole side, so subsets do not resample"
    return values, notes


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
