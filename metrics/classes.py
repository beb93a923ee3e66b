"""Class balance of generated samples as the evaluator classifies them: how many of the
variant's classes get a fair share (mode dropping at the class level) and the entropy of the
class histogram."""

from __future__ import annotations

from typing import Any

from metrics.family import Family, FeatureContext, MetricKey


def compute(ctx: FeatureContext) -> tuple[dict[str, float | None], dict[str, Any]]:
    """Coverage (share of the variant's classes with >= half their uniform share), entropy
    in bits of the predicted-class histogram, and the histogram itself as a note."""
    import torch

    from metrics.evaluator import entropy_bits

    hist = torch.bincount(ctx.gen["logits"].argmax(1), minlength=10).double()
    share = hist / hist.sum()
    fair = 0.5 / len(ctx.class_ids)
    coverage = sum(float(share[c]) >= fair for c in ctx.class_ids) / len(ctx.class_ids)
    values = {"class_coverage": coverage, "class_entropy": entropy_bits(share)}
    return values, {"class_histogram": [int(h) for h in hist.tolist()]}


FAMILY = Family(
    "classes",
    (
        MetricKey("class_coverage", True, "share of classes with >= 50% of their uniform "
                  "share", "fmnist", headline=True),
        MetricKey("class_entropy", True, "entropy (bits) of the evaluator's class histogram",
                  "fmnist", headline=True),
    ),
    compute,
    needs=("logits",),
    extractors=("fmnist",),
)  # fmt: skip
