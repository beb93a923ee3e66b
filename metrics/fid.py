"""Frechet distance between Gaussians fitted to generated and reference features (Heusel et
al. 2017), on both feature passes.

The statistics are torch-fidelity's (mean and unbiased covariance) taken in float64, and the
trace term ``tr sqrt(S1 S2)`` is the sum of the square roots of the eigenvalues of the
symmetric positive semi-definite ``sqrt(S1) S2 sqrt(S1)``, with eigenvalues under the
numerical rank threshold taken as zero: unlike the eigenvalues of the non-symmetric ``S1 S2``
(torch-fidelity's route), these stay real when a covariance is singular (N at or below the
feature dimension), and the zero ones add no rounding noise to the trace.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from metrics.family import Family, FeatureContext, MetricInputError, MetricKey

if TYPE_CHECKING:
    import torch

STATISTICS = "float64 mean/covariance; tr sqrt by eigh of sqrt(S1) S2 sqrt(S1), rank-clipped"


def fid(f1: torch.Tensor, f2: torch.Tensor) -> float:
    """FID between two feature sets (N x D each), in float64.

    When one side has no more samples than dimensions (64 Inception samples of 2,048-d, as
    in the ladder and small CI runs), its covariance is X^T X for the N x D matrix X of its
    centred rows over sqrt(N - 1), and the non-zero eigenvalues of sqrt(S_other) X^T X
    sqrt(S_other) are those of the N x N matrix X S_other X^T: the same trace without the
    D x D eigendecompositions. Otherwise (every profile's 10,000 samples) the D x D route."""
    import numpy as np

    a, b = f1.double().cpu().numpy(), f2.double().cpu().numpy()
    mu1, mu2 = a.mean(axis=0), b.mean(axis=0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    if min(len(a), len(b)) <= a.shape[1]:
        few, mu, other = (a, mu1, s2) if len(a) <= len(b) else (b, mu2, s1)
        x = (few - mu) / np.sqrt(len(few) - 1)  # the means computed above
        tr_covmean = np.sqrt(_rank_clip(np.linalg.eigvalsh(x @ other @ x.T))).sum()
    else:
        w, v = np.linalg.eigh(s1)
        root1 = (v * np.sqrt(_rank_clip(w))) @ v.T
        tr_covmean = np.sqrt(_rank_clip(np.linalg.eigvalsh(root1 @ s2 @ root1))).sum()
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * tr_covmean)


def _rank_clip(eigenvalues: Any) -> Any:
    """Eigenvalues of a PSD matrix with those below its numerical rank threshold (largest
    x size x float64 epsilon, as ``numpy.linalg.matrix_rank``) set to zero: rounding leaves
    ~1e-16-relative values there, whose square roots (~1e-8) would add up in the trace."""
    import numpy as np

    tol = eigenvalues.max(initial=0.0) * len(eigenvalues) * np.finfo(np.float64).eps
    return np.where(eigenvalues > tol, eigenvalues, 0.0)


def compute(ctx: FeatureContext) -> tuple[dict[str, float | None], dict[str, Any]]:
    """FID of the pass; notes whether N <= the feature dimension (a singular covariance)."""
    gen, ref = ctx.gen["features"], ctx.ref["features"]
    n1, n2 = len(gen), len(ref)
    if min(n1, n2) < 2:
        raise MetricInputError(f"FID needs at least 2 samples per side, got {n1} and {n2}")
    notes = {"fid_rank_deficient": min(n1, n2) <= gen.shape[1], "fid_statistics": STATISTICS}
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
