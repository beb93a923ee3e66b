"""Conditional generation: does G(z, y) show class y (label accuracy, by the evaluator), and
how close is each class to its own reference (intra-class FID, Miyato & Koyama 2018)?
Reported for conditional variants only."""

from __future__ import annotations

from typing import Any

from metrics.family import Family, FeatureContext, MetricKey
from metrics.fid import fid


def compute(ctx: FeatureContext) -> tuple[dict[str, float | None], dict[str, Any]]:
    """Label accuracy, and the mean per-class FID when every class has more samples on both
    sides than the feature dimension (else None, with the reason in the notes)."""
    if ctx.gen_labels is None or ctx.ref_labels is None:
        return {}, {}
    pred = ctx.gen["logits"].argmax(1)
    values: dict[str, float | None] = {
        "label_accuracy": float((pred == ctx.gen_labels).double().mean())
    }
    gen_f, ref_f = ctx.gen["features"], ctx.ref["features"]
    dim = gen_f.shape[1]
    per_class: dict[int, float] = {}
    for c in ctx.class_ids:
        g, r = gen_f[ctx.gen_labels == c], ref_f[ctx.ref_labels == c]
        if min(len(g), len(r)) > dim:  # fewer would leave the covariance singular
            per_class[c] = fid(g, r)
    notes: dict[str, Any] = {"fid_fmnist_per_class": {str(c): v for c, v in per_class.items()}}
    complete = len(per_class) == len(ctx.class_ids)
    values["intra_fid_fmnist"] = sum(per_class.values()) / len(per_class) if complete else None
    if not complete:
        notes["intra_fid_fmnist"] = f"needs > {dim} samples per class"
    return values, notes


FAMILY = Family(
    "conditional",
    (
        MetricKey("label_accuracy", True, "share of G(z, y) the evaluator classifies as y",
                  "conditional", headline=True),
        MetricKey("intra_fid_fmnist", False, "mean per-class evaluator FID (conditional "
                  "variants)", "conditional", headline=True),
    ),
    compute,
    needs=("logits",),
    extractors=("fmnist",),
)  # fmt: skip
