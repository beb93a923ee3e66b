"""Density and coverage (Naeem et al. 2020, "Reliable Fidelity and Diversity Metrics for
Generative Models"): k-NN fidelity and diversity that outliers do not fool.

With r_i the distance from reference sample i to its k-th nearest reference neighbour:
density is the mean, over generated samples, of the number of reference balls B(R_i, r_i)
containing the sample, divided by k (about 1 when generated and reference distributions
match; it is not bounded by 1); coverage is the share of reference samples whose ball
contains at least one generated sample. Unlike precision, one outlier reference sample with a
large ball cannot make noise look faithful, since density counts balls, not their union.
Strict inequalities and k as in the authors' ``prdc`` package; distances in float64.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from metrics.family import Family, FeatureContext, MetricInputError, MetricKey
from metrics.refmemo import per_reference

if TYPE_CHECKING:
    import torch

CHUNK = 1024  # rows of a distance block: 1024 x 10k float64 is 80 MB


def reference_radii(ref: torch.Tensor, k: int) -> torch.Tensor:
    """Distance from each reference sample to its k-th nearest other reference sample, in
    float64, computed once per reference (``metrics.refmemo``)."""
    import torch

    def radii() -> torch.Tensor:
        r = ref.double()
        return torch.cat([
            torch.cdist(r[i : i + CHUNK], r).kthvalue(k + 1, dim=1).values  # +1: itself
            for i in range(0, len(r), CHUNK)
        ])  # fmt: skip

    return per_reference(ref, ("dnc-radii", k), radii)


def density_coverage(gen: torch.Tensor, ref: torch.Tensor, k: int) -> tuple[float, float]:
    """(density, coverage) of generated features ``gen`` against reference ``ref``."""
    import torch

    if len(ref) <= k:
        raise MetricInputError(f"density/coverage with k={k} needs more than {k} reference "
                               f"samples, got {len(ref)}")  # fmt: skip
    gen, ref = gen.double(), ref.double()
    radii = reference_radii(ref, k)
    inside = 0
    nearest = torch.full((len(ref),), float("inf"), dtype=torch.float64)
    for i in range(0, len(gen), CHUNK):
        d = torch.cdist(gen[i : i + CHUNK], ref)  # (chunk, M)
        inside += int((d < radii[None]).sum())
        nearest = torch.minimum(nearest, d.min(dim=0).values)
    density = inside / (k * len(gen))
    coverage = float((nearest < radii).double().mean())
    return density, coverage


def compute(ctx: FeatureContext) -> tuple[dict[str, float | None], dict[str, Any]]:
    """Density and coverage with k = ``dnc_neighborhood``."""
    density, coverage = density_coverage(
        ctx.gen["features"], ctx.ref["features"], ctx.settings.dnc_neighborhood
    )
    return {ctx.key("density"): density, ctx.key("coverage"): coverage}, {}


# Measured with `bench sanity` (docs/metrics.md, "Sanity ladder"): coverage orders the ladder on
# both feature spaces; density gives one repeated real image (a collapsed generator) more than
# real images, and has no "better" side (about 1 is matched).
DENSITY_UNRANKED = ("fails the sanity ladder: a collapsed generator scores above real images "
                    "(about 1 means matched; no better direction)")  # fmt: skip

FAMILY = Family(
    "dnc",
    (
        MetricKey("density_fmnist", True, "density (k=5 NN balls, Naeem et al. 2020) on the "
                  "evaluator's features; about 1 when matched", "fmnist",
                  unranked=DENSITY_UNRANKED),
        MetricKey("coverage_fmnist", True, "coverage (k=5 NN balls, Naeem et al. 2020) on the "
                  "evaluator's features", "fmnist", headline=True),
        MetricKey("density_inception", True, "density (k=5 NN balls) on pool3", "inception",
                  unranked=DENSITY_UNRANKED),
        MetricKey("coverage_inception", True, "coverage (k=5 NN balls) on pool3", "inception"),
    ),
    compute,
)  # fmt: skip
