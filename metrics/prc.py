"""Improved precision and recall (Kynkaanniemi et al. 2019): the share of generated samples
inside the reference's k-NN manifold, and of reference samples inside the generated one
(torch-fidelity's computation), on both passes."""

from __future__ import annotations

from typing import Any

from metrics.family import Family, FeatureContext, MetricKey


def compute(ctx: FeatureContext) -> tuple[dict[str, float | None], dict[str, Any]]:
    """Precision and recall with k = ``prc_neighborhood``."""
    from torch_fidelity.metric_prc import prc_features_to_metric

    prc = prc_features_to_metric(
        ctx.gen["features"], ctx.ref["features"], prc_neighborhood=ctx.settings.prc_neighborhood,
        prc_batch_size=10000, save_cpu_ram=False, verbose=False,
    )  # fmt: skip
    return {ctx.key("precision"): float(prc["precision"]),
            ctx.key("recall"): float(prc["recall"])}, {}  # fmt: skip


# Measured with `bench sanity` (README "Sanity ladder"): noise and a collapsed generator
# score above real images on both feature spaces.
UNRANKED = ("fails the sanity ladder: noisier images and a collapsed generator score higher "
            "(outliers inflate the k-NN manifold); see coverage")  # fmt: skip

FAMILY = Family(
    "prc",
    (
        MetricKey("precision_fmnist", True, "precision (k=3 NN manifolds) on the evaluator's "
                  "features", "fmnist", unranked=UNRANKED),
        MetricKey("recall_fmnist", True, "recall (k=3 NN manifolds) on the evaluator's "
                  "features", "fmnist", headline=True),
        MetricKey("precision_inception", True, "precision (k=3 NN manifolds) on pool3",
                  "inception", unranked=UNRANKED),
        MetricKey("recall_inception", True, "recall (k=3 NN manifolds) on pool3", "inception"),
    ),
    compute,
)  # fmt: skip
