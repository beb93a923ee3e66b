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

    torch-fidelity's full computation, distance block for distance block (``torch.cdist`` on
    the same BLOCK x BLOCK pieces, ``<=`` and k), so every distance and radius is bitwise
    its value; but one BLOCK of rows at a time instead of whole N x N and M x N matrices, so
    memory grows with N, not N squared (50,000 samples: about 2 GB, not 10-20 GB). The
    reference's own k-NN radii are computed once per reference (``metrics.refmemo``): they
    are the 10k x 10k part, and every job of a run shares them.
    """
    import torch
    from torch_fidelity.metric_prc import calc_cdist_part

    if min(len(gen), len(ref)) <= k:
        raise MetricInputError(f"precision/recall with k={k} needs more than {k} samples on "
                               f"each side, got {len(gen)} and {len(ref)}")  # fmt: skip
    ref_radii = per_reference(ref, ("prc-radii", k), lambda: knn_radii(ref, k))
    gen_radii = knn_radii(gen, k)
    recalled, precise = [], torch.zeros(len(gen), dtype=torch.bool)
    for ref_block, radii in zip(ref.split(BLOCK), ref_radii.split(BLOCK), strict=True):
        d = calc_cdist_part(ref_block, gen, BLOCK)  # rows of torch-fidelity's ref-to-gen matrix
        recalled.append((d <= gen_radii).any(dim=1))
        precise |= (d <= radii[:, None]).any(dim=0)  # its transpose, read column-wise
    recall = torch.cat(recalled).float().mean().item()
    precision = precise.float().mean().item()
    return precision, recall


def knn_radii(x: torch.Tensor, k: int) -> torch.Tensor:
    """Distance of each row of ``x`` to its k-th nearest other row: torch-fidelity's full
    matrix's ``kthvalue(k + 1)``, one block of rows at a time (the same values)."""
    import torch
    from torch_fidelity.metric_prc import calc_cdist_part

    return torch.cat([calc_cdist_part(b, x, BLOCK).kthvalue(k + 1).values for b in x.split(BLOCK)])


def compute(ctx: FeatureContext) -> tuple[dict[str, float | None], dict[str, Any]]:
    """Precision and recall with k = ``prc_neighborhood``."""
    precision, recall = precision_recall(
        ctx.gen["features"], ctx.ref["features"], ctx.settings.prc_neighborhood
    )
    return {ctx.key("precision"): precision, ctx.key("recall"): recall}, {}


# Measured with `bench sanity` (docs/metrics.md, "Sanity ladder"): noise and a collapsed generator
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
