"""Improved precision and recall (Kynkaanniemi et al. 2019): the share of generated samples
inside the reference's k-NN manifold, and of reference samples inside the generated one
(torch-fidelity's computation), on both passes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from metrics.family import Family, FeatureContext, MetricInputError, MetricKey
from metrics.refmemo import per_reference

if TYPE_CHECKING:
    import torch

BLOCK = 10_000  # torch-fidelity's prc_batch_size: rows and columns of one distance block


def precision_recall(gen: torch.Tensor, ref: torch.Tensor, k: int) -> tuple[float, float]:
    """(precision, recall) of generated features ``gen`` against reference ``ref``.

    torch-fidelity's full computation step for step (its distance blocks, ``<=`` and k), with
    the reference's own k-NN radii computed once per reference (``metrics.refmemo``): they
    are the 10k x 10k part, and every job of a run shares them.
    """
    from torch_fidelity.metric_prc import calc_cdist_full

    if min(len(gen), len(ref)) <= k:
        raise MetricInputError(f"precision/recall with k={k} needs more than {k} samples on "
                               f"each side, got {len(gen)} and {len(ref)}")  # fmt: skip
    ref_radii = per_reference(
        ref, ("prc-radii", k), lambda: calc_cdist_full(ref, ref, BLOCK).kthvalue(k + 1).values
    )
    gen_radii = calc_cdist_full(gen, gen, BLOCK).kthvalue(k + 1).values
    ref_to_gen = calc_cdist_full(ref, gen, BLOCK)
    recall = (ref_to_gen <= gen_radii).any(dim=1).float().mean().item()
    gen_to_ref = ref_to_gen.T
    precision = (gen_to_ref <= ref_radii).any(dim=1).float().mean().item()
    return precision, recall


def compute(ctx: FeatureContext) -> tuple[dict[str, float | None], dict[str, Any]]:
    """Precision and recall with k = ``prc_neighborhood``."""
    precision, recall = precision_recall(
        ctx.gen["features"], ctx.ref["features"], ctx.settings.prc_neighborhood
    )
    return {ctx.key("precision"): precision, ctx.key("recall"): recall}, {}


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
