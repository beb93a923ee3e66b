"""The three-sample data-copying test of Meehan, Chaudhuri and Dasgupta (AISTATS 2020).

FID and its relatives compare generated samples with held-out statistics: a generator that
returns its training images scores at the real-data floor. The data-copying test asks
instead whether generated samples lie *closer to the training set* than held-out real
samples do. With a training sample T, generated samples Q_m and held-out real samples P_n in
one feature space:

1. partition the space into k cells by k-means on T;
2. in each cell pi, take every sample's distance to its nearest training point of the cell,
   L_pi(Q_m) and L_pi(P_n), and compare the two sets by the Mann-Whitney U statistic
   (U counts the pairs (q, p) with d(q) > d(p), ties one half), z-scored without a tie
   correction: Z_U(pi) = (U - m_pi n_pi / 2) / sqrt(m_pi n_pi (m_pi + n_pi + 1) / 12);
3. average Z_U over the cells holding at least ``min_cell`` generated samples, weighted by
   the share of P_n in each: C_T = sum P_n(pi) Z_U(pi) / sum P_n(pi).

C_T well below 0 (the paper flags C_T < -3) means the samples sit closer to their training
neighbours than new real data would: data copying. About 0: neither. Above 0: the model
stays farther from its data than real data do (underfitting, or blur); that is the usual
case for GANs that are not yet good. The statistic is a z-score, so its size grows with the
sample counts: compare values only under one protocol (the counts, k, min_cell, features).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from metrics.family import Family, FeatureContext, MetricKey

if TYPE_CHECKING:  # the registry imports this module; torch loads only when it computes
    import numpy as np
    import torch

COPYING_FLAG = -3.0  # the paper's threshold: C_T below it is data copying

# The k-means partition of training features, by (a digest of their values, cells, seed):
# every job, ladder rung and floor draw of a process scores against the same T, and the
# partition of 60,000 features costs more than the rest of the test (about 10 s for the
# evaluator's 128-d on 2 cores, far more for Inception's 2,048-d).
_PARTITIONS: dict[tuple[bytes, int, int], tuple[Any, Any]] = {}
_PARTITIONS_KEPT = 4  # one per extractor and class set in use is plenty


@dataclass(frozen=True)
class CopyingResult:
    """C_T and what it was computed from."""

    ct: float
    cells_used: int  # cells with at least min_cell generated samples
    cells: int  # k of the k-means partition
    gen_share_used: float  # share of the generated samples in the cells used
    z_per_cell: tuple[float, ...]  # Z_U of each used cell, in cell order


def kmeans_cells(train: torch.Tensor, k: int, seed: int, iters: int = 50) -> torch.Tensor:
    """Centroids of a k-means partition of ``train`` (k-means++ start, Lloyd's iterations,
    float64, deterministic for a seed). Empty cells keep their previous centroid."""
    import torch

    x = train.double()
    g = torch.Generator().manual_seed(seed)
    centers = x[torch.randint(len(x), (1,), generator=g)]
    for _ in range(1, k):  # k-means++: the next center with probability ~ distance^2
        d2 = torch.cdist(x, centers).min(dim=1).values.square()
        centers = torch.cat([centers, x[torch.multinomial(d2 / d2.sum(), 1, generator=g)]])
    for _ in range(iters):
        assign = assign_cells(x, centers)
        sums = torch.zeros_like(centers).index_add_(0, assign, x)
        counts = torch.bincount(assign, minlength=k).unsqueeze(1)
        new = torch.where(counts > 0, sums / counts.clamp(min=1), centers)
        if torch.equal(new, centers):
            break
        centers = new
    return centers


def partition(train: torch.Tensor, cells: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The k-means centroids of ``train`` and each training row's cell, computed once per
    process for given values (the same as :func:`kmeans_cells` and :func:`assign_cells`
    every time: the result is a pure function of its inputs, so it is keyed by a digest of
    them, and a T loaded again from the feature cache finds its partition)."""
    import hashlib

    values = train.detach().cpu().contiguous()
    digest = hashlib.blake2b(values.numpy().reshape(-1).view("u1"), digest_size=16)
    digest.update(f"{values.dtype}{tuple(values.shape)}".encode())
    key = (digest.digest(), cells, seed)
    if key in _PARTITIONS:
        return _PARTITIONS[key]
    centers = kmeans_cells(train, cells, seed)
    t_cell = assign_cells(train, centers)
    if len(_PARTITIONS) >= _PARTITIONS_KEPT:
        _PARTITIONS.pop(next(iter(_PARTITIONS)))  # the oldest entry
    _PARTITIONS[key] = (centers, t_cell)
    return centers, t_cell


def assign_cells(x: torch.Tensor, centers: torch.Tensor, chunk: int = 4096) -> torch.Tensor:
    """Index of the nearest centroid of each row of ``x``."""
    import torch

    c = centers.double()
    return torch.cat([torch.cdist(x[i : i + chunk].double(), c).argmin(dim=1)
                      for i in range(0, len(x), chunk)])  # fmt: skip


def nearest_distance(x: torch.Tensor, train: torch.Tensor, chunk: int = 2048) -> torch.Tensor:
    """Euclidean distance of each row of ``x`` to its nearest row of ``train`` (float64)."""
    import torch

    t = train.double()
    return torch.cat([torch.cdist(x[i : i + chunk].double(), t).min(dim=1).values
                      for i in range(0, len(x), chunk)])  # fmt: skip


def mann_whitney_z(gen_d: np.ndarray, held_d: np.ndarray) -> float:
    """Z-scored Mann-Whitney U of the generated against the held-out distances (U counts
    the pairs with the generated distance larger; ties count one half; no tie correction,
    as in the paper)."""
    import numpy as np
    from scipy.stats import rankdata

    m, n = len(gen_d), len(held_d)
    ranks = rankdata(np.concatenate([gen_d, held_d]))  # average ranks for ties
    u = ranks[:m].sum() - m * (m + 1) / 2
    return float((u - m * n / 2) / math.sqrt(m * n * (m + n + 1) / 12))


def data_copying(
    train: torch.Tensor,
    held_out: torch.Tensor,
    gen: torch.Tensor,
    cells: int = 20,
    min_cell: int = 20,
    seed: int = 2020,
) -> CopyingResult:
    """C_T of ``gen`` against ``train`` with ``held_out`` real samples, all (N, D) features.

    Raises:
        ValueError: too few training samples for the cells, or no cell with ``min_cell``
            generated samples and at least one held-out sample.
    """
    import numpy as np

    if len(train) < cells:
        raise ValueError(f"{len(train)} training samples for {cells} cells")
    centers, t_cell = partition(train, cells, seed)
    p_cell, q_cell = (assign_cells(a, centers) for a in (held_out, gen))
    weights, zs, used_gen = [], [], 0
    for c in range(cells):
        q, p, t = gen[q_cell == c], held_out[p_cell == c], train[t_cell == c]
        if len(q) < min_cell or len(p) == 0:
            continue
        zq, zp = nearest_distance(q, t).numpy(), nearest_distance(p, t).numpy()
        zs.append(mann_whitney_z(zq, zp))
        weights.append(len(p) / len(held_out))
        used_gen += len(q)
    if not zs:
        raise ValueError(f"no cell holds {min_cell} generated samples (and a held-out one)")
    ct = float(np.dot(weights, zs) / np.sum(weights))
    return CopyingResult(ct, len(zs), cells, used_gen / len(gen), tuple(zs))


def compute(ctx: FeatureContext) -> tuple[dict[str, float | None], dict[str, Any]]:
    """C_T of the pass's generated features against its training features (T), with its
    held-out real features (P_n); the sizes, cells and their coverage go to the notes."""
    assert ctx.train is not None and ctx.held_out is not None  # runs_on checked them
    s = ctx.settings
    train, held, gen = ctx.train["features"], ctx.held_out["features"], ctx.gen["features"]
    try:
        r = data_copying(train, held, gen, s.copying_cells, s.copying_min_cell, s.metric_seed)
    except ValueError as exc:  # too few samples for the cells: no value, the rest stands
        return {ctx.key("ct"): None}, {"copying": {"not computed": str(exc)}}
    notes = {
        "copying": {
            "train": len(train), "held_out": len(held), "generated": len(gen),
            "cells": r.cells, "cells_used": r.cells_used, "min_cell": s.copying_min_cell,
            "generated_share_used": round(r.gen_share_used, 4), "flag_below": COPYING_FLAG,
        },
    }  # fmt: skip
    return {ctx.key("ct"): r.ct}, notes


_WHY = (
    "a z-score for data copying, not a quality score: below -3 flags copying, about 0 is what "
    "held-out real data scores, above 0 means samples stay farther from the training set than "
    "real data (the usual case for GANs); its size grows with the sample counts"
)
FAMILY = Family(
    "copying",
    (
        MetricKey("ct_fmnist", True, "data-copying C_T (Meehan et al. 2020) on the evaluator's "
                  "features; < -3: copies its training images", "fmnist", unranked=_WHY),
        MetricKey("ct_inception", True, "data-copying C_T on TF-Inception pool3; < -3: "
                  "copies its training images", "inception", unranked=_WHY),
    ),
    compute,
    needs_train=True,
)  # fmt: skip
