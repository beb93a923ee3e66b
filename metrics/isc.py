"""Inception Score (Salimans et al. 2016): exp of the mean KL between each sample's class
posterior and the marginal, over ``isc_splits`` splits (torch-fidelity's computation); on the
evaluator's logits (max 10) and, where the Inception has them, its unbiased logits."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from metrics.family import EvalSettings, Family, FeatureContext, MetricInputError, MetricKey

if TYPE_CHECKING:
    import torch


def inception_score(logits: torch.Tensor, settings: EvalSettings) -> tuple[float, float]:
    """IS mean and std over ``isc_splits`` splits (torch-fidelity's computation)."""
    from torch_fidelity.metric_isc import isc_features_to_metric

    if len(logits) < settings.isc_splits:
        raise MetricInputError(
            f"Inception Score with {settings.isc_splits} splits needs at least that many "
            f"samples, got {len(logits)}"
        )
    r = isc_features_to_metric(logits, settings.isc_splits, True, settings.metric_seed)
    return float(r["inception_score_mean"]), float(r["inception_score_std"])


def compute(ctx: FeatureContext) -> tuple[dict[str, float | None], dict[str, Any]]:
    """IS mean and its std over the splits."""
    mean, std = inception_score(ctx.gen["logits"], ctx.settings)
    return {ctx.key("is"): mean, ctx.key("is") + "_std": std}, {}


FAMILY = Family(
    "isc",
    (
        MetricKey("is_fmnist", True, "Inception Score with the Fashion-MNIST evaluator "
                  "(max 10)", "fmnist", headline=True),
        MetricKey("is_fmnist_std", False, "std of is_fmnist over its splits", "fmnist",
                  spread_of="is_fmnist"),
        MetricKey("is_inception", True, "Inception Score, TF-Inception logits, 299x299, "
                  "10 splits", "inception", headline=True),
        MetricKey("is_inception_std", False, "std of is_inception over its splits",
                  "inception", spread_of="is_inception"),
    ),
    compute,
    needs=("logits",),
)  # fmt: skip
