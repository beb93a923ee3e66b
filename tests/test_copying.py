"""The data-copying test (metrics/copying.py) against a transcription of Meehan et al.'s
definition, and on synthetic data whose answer is known: copies, fresh draws, far draws."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.stats import mannwhitneyu

from metrics.copying import (
    COPYING_FLAG,
    assign_cells,
    data_copying,
    kmeans_cells,
    mann_whitney_z,
)


def mixture(n: int, seed: int, dim: int = 8) -> torch.Tensor:
    """n draws of a 5-component Gaussian mixture in ``dim`` dimensions (fixed means)."""
    means = torch.Generator().manual_seed(99)
    mu = torch.randn(5, dim, generator=means) * 4
    g = torch.Generator().manual_seed(seed)
    which = torch.randint(5, (n,), generator=g)
    return mu[which] + torch.randn(n, dim, generator=g)


def transcribed_ct(train, held, gen, centers, min_cell):
    """The paper's C_T written out with loops: cells by the nearest centroid, distances to
    the nearest training point of the cell, U by counting pairs, Z without tie correction,
    held-out-weighted mean over the cells with min_cell generated samples."""
    t, p, q, c = (a.double().numpy() for a in (train, held, gen, centers))

    def cell(x):
        return int(np.argmin([np.linalg.norm(x - ci) for ci in c]))

    tc, pc, qc = [cell(x) for x in t], [cell(x) for x in p], [cell(x) for x in q]
    num = den = 0.0
    for k in range(len(c)):
        tk = [x for x, j in zip(t, tc, strict=True) if j == k]
        pk = [x for x, j in zip(p, pc, strict=True) if j == k]
        qk = [x for x, j in zip(q, qc, strict=True) if j == k]
        if len(qk) < min_cell or not pk:
            continue
        lp = [min(np.linalg.norm(x - y) for y in tk) for x in pk]
        lq = [min(np.linalg.norm(x - y) for y in tk) for x in qk]
        u = sum(1.0 if a > b else 0.5 if a == b else 0.0 for a in lq for b in lp)
        m, n = len(lq), len(lp)
        z = (u - m * n / 2) / math.sqrt(m * n * (m + n + 1) / 12)
        w = len(pk) / len(p)
        num, den = num + w * z, den + w
    return num / den


def test_ct_equals_the_transcribed_definition() -> None:
    train, held, gen = mixture(300, 1), mixture(150, 2), mixture(120, 3) * 1.1
    r = data_copying(train, held, gen, cells=4, min_cell=10, seed=5)
    centers = kmeans_cells(train, 4, 5)
    assert r.cells_used == 4 and len(r.z_per_cell) == 4
    assert r.ct == pytest.approx(transcribed_ct(train, held, gen, centers, 10), abs=1e-9)


def test_mann_whitney_z_matches_scipy_u_and_counts_ties_half() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 1, 40), rng.normal(0.5, 1, 55)
    u = mannwhitneyu(a, b, alternative="two-sided").statistic  # pairs a > b, ties half
    expected = (u - 40 * 55 / 2) / math.sqrt(40 * 55 * (40 + 55 + 1) / 12)
    assert mann_whitney_z(a, b) == pytest.approx(expected, abs=1e-12)
    assert mann_whitney_z(np.array([1.0, 1.0]), np.array([1.0, 1.0, 1.0])) == 0.0


def test_kmeans_recovers_separated_clusters_and_is_deterministic() -> None:
    x = torch.cat([torch.randn(100, 2) * 0.1 + torch.tensor(c) for c in ((0, 0), (9, 0), (0, 9))])
    centers = kmeans_cells(x, 3, seed=1)
    cells = assign_cells(x, centers)
    assert [len(set(cells[i : i + 100].tolist())) for i in (0, 100, 200)] == [1, 1, 1]
    assert len(set(cells.tolist())) == 3
    assert torch.equal(centers, kmeans_cells(x, 3, seed=1))


def test_known_answers_copies_fresh_draws_and_far_draws() -> None:
    train, held = mixture(4000, 10), mixture(2000, 11)
    copies = train[:2000] + 1e-3 * torch.randn(2000, 8, generator=torch.Generator().manual_seed(0))
    fresh = mixture(2000, 12)
    far = mixture(2000, 13) * 1.0 + 1.5 * torch.randn(
        2000, 8, generator=torch.Generator().manual_seed(1)
    )
    ct = {name: data_copying(train, held, q, cells=10, min_cell=20).ct
          for name, q in (("copies", copies), ("fresh", fresh), ("far", far))}  # fmt: skip
    assert ct["copies"] < COPYING_FLAG * 5, ct  # flagged, by far
    assert abs(ct["fresh"]) < 2.5, ct  # neither: a z-score near 0
    assert ct["far"] > 5, ct  # farther from the training set than new data
    # half copies, half fresh: still flagged (copying a part of the data is copying)
    half = torch.cat([copies[:1000], fresh[:1000]])
    assert data_copying(train, held, half, cells=10, min_cell=20).ct < COPYING_FLAG


def test_the_partition_is_computed_once_per_training_tensor(monkeypatch) -> None:
    """A process scoring many sample sets against one T runs k-means once, also when T is
    loaded again (an equal tensor); other values or another cell count get their own
    partition, and cached or not the statistic is the same."""
    import metrics.copying as cp

    calls = []
    real_kmeans = cp.kmeans_cells
    monkeypatch.setattr(cp, "kmeans_cells", lambda *a, **k: calls.append(1) or real_kmeans(*a, **k))
    monkeypatch.setattr(cp, "_PARTITIONS", {})
    train, held = mixture(1000, 20), mixture(500, 21)
    first = data_copying(train, held, mixture(500, 22), cells=5).ct
    again = [data_copying(train, held, mixture(500, s), cells=5).ct for s in (22, 23, 24)]
    assert len(calls) == 1 and again[0] == first
    assert data_copying(train.clone(), held, mixture(500, 22), cells=5).ct == first
    assert len(calls) == 1
    other = train.clone()
    other[0, 0] += 1e-6
    data_copying(other, held, mixture(500, 22), cells=5)
    data_copying(train, held, mixture(500, 22), cells=6)
    assert len(calls) == 3
    monkeypatch.setattr(cp, "_PARTITIONS", {})
    assert [data_copying(train, held, mixture(500, s), cells=5).ct for s in (23, 24)] == again[1:]
    for n in range(cp._PARTITIONS_KEPT + 2):  # bounded: the oldest entries leave
        data_copying(mixture(200, 100 + n), held, mixture(500, 22), cells=5)
    assert len(cp._PARTITIONS) == cp._PARTITIONS_KEPT


def test_refuses_inputs_without_a_usable_cell() -> None:
    train, held = mixture(50, 1), mixture(50, 2)
    with pytest.raises(ValueError, match="training samples"):
        data_copying(train[:3], held, held, cells=4)
    with pytest.raises(ValueError, match="no cell holds"):
        data_copying(train, held, mixture(10, 3), cells=4, min_cell=20)


def test_the_registered_family_runs_only_with_training_features() -> None:
    """``ct_fmnist`` from a feature pass that carries T and P_n, with its sizes in the notes;
    no value (and the reason) when too few samples fill a cell; skipped without T."""
    from metrics.copying import FAMILY
    from metrics.family import EvalSettings, FeatureContext

    train, held = mixture(4000, 10), mixture(2000, 11)
    settings = EvalSettings(num_samples=2000, copying_cells=10)
    ctx = FeatureContext("fmnist", {"features": train[:2000]}, {"features": held}, settings,
                         train={"features": train}, held_out={"features": held})  # fmt: skip
    assert FAMILY.runs_on(ctx)
    values, notes = FAMILY.compute(ctx)
    assert values["ct_fmnist"] < COPYING_FLAG
    assert notes["copying"]["train"] == 4000 and notes["copying"]["held_out"] == 2000
    few = FeatureContext("fmnist", {"features": train[:15]}, {"features": held}, settings,
                         train={"features": train}, held_out={"features": held})  # fmt: skip
    values, notes = FAMILY.compute(few)
    assert values == {"ct_fmnist": None} and "no cell holds" in notes["copying"]["not computed"]
    assert not FAMILY.runs_on(FeatureContext("fmnist", {"features": held}, {}, settings))


def test_nearest_figure_finds_the_copied_images(tmp_path: Path) -> None:
    """Samples that are training images: both rows of the figure name those very images."""
    from PIL import Image

    from bench.nearest import nearest_figure

    g = torch.Generator().manual_seed(0)
    train = torch.randint(0, 256, (300, 1, 28, 28), generator=g, dtype=torch.uint8)
    feats = train.flatten(1).float() @ torch.randn(784, 16, generator=g)
    pick = torch.tensor([5, 17, 200, 3, 99, 150, 42, 7, 8, 9])
    shown = nearest_figure(train[pick], feats[pick], train, feats, tmp_path / "n.png")
    assert shown["by_pixels"] == shown["by_features"] == pick[:8].tolist()
    width, height = Image.open(tmp_path / "n.png").size
    assert (width, height) == (2 * (8 * 30 + 2), 2 * (3 * 30 + 2))  # 3 rows of 8, 2x


@pytest.mark.integration
def test_every_scored_job_has_ct_and_the_nearest_figure(
    synthetic_dir: Path, tmp_path: Path
) -> None:
    """A trained job's row carries ct_fmnist with its protocol and the nearest-image figure,
    and `bench report` shows the figure."""
    from tests.conftest import invoke

    run = tmp_path / "r"
    result = invoke("run", "--variants", "dcgan-small", "--profile", "smoke", "--kimg", "0.256",
                    "--inception-samples", "0", "--data-dir", synthetic_dir, "--out", run,
                    "--no-progress")  # fmt: skip
    assert result.exit_code == 0, result.output
    row = json.loads((run / "results.jsonl").read_text())
    assert isinstance(row["metrics"]["ct_fmnist"], float)
    assert row["protocol"]["fmnist"]["copying"]["cells"] == 20
    assert (run / row["nearest"]["figure"]).is_file() and len(row["nearest"]["by_pixels"]) == 8
    assert invoke("report", run).exit_code == 0
    assert "Nearest training images" in (run / "report" / "report.html").read_text()
