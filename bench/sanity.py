"""The sanity ladder: image sets of known, decreasing quality, scored like generated samples.

Rungs, all scored against the test split as a generator's samples would be: real training
images (a draw of ``n`` by ``randperm(draw)``: the floor a perfect generator reaches), the
same images with Gaussian pixel noise of sigma 0.1, 0.2 and 0.4 (of the 0..1 range), uniform
noise, and one training image repeated (a generator collapsed to a point). A metric that
orders these against its declared direction cannot tell good generators from bad ones and
must not be ranked (:attr:`metrics.family.MetricKey.unranked`). Conditional rungs carry
labels: the images' own for real and noisy images, uniform draws for the noise and the
constant image (whose content ignores the label, as a collapsed conditional G would).

Two more rungs test the data-copying test (:mod:`metrics.copying`), whose ``real`` rung is a
generator that returns its training images: ``held-out``, test images the test never uses
(about 0), and ``copies+noise``, half training images and half uniform noise (still
copying). FID and its relatives score the ``real`` rung at their best: that is the blind
spot the copying test closes.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import torch

from bench.data import load_part
from bench.errors import BenchError
from bench.scoring import Scorer, copying_split
from metrics.copying import COPYING_FLAG
from metrics.keys import METRICS
from models.data_options import DataOptions

SIGMAS = (0.1, 0.2, 0.4)
NOISE_RUNGS = tuple(f"sigma {s}" for s in SIGMAS)
RUNGS = ("real", *NOISE_RUNGS, "uniform", "constant")
COPYING_RUNGS = ("held-out", "copies+noise")  # scored too; read by the copying rule only
COPYING_KEYS = ("ct_fmnist", "ct_inception")


def rungs(
    data_dir: str | None, n: int, draw: int, metric_seed: int = 2020
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """The ladder's image sets (uint8, N x 1 x 28 x 28) and their labels, by rung name; the
    ``held-out`` rung is the test half the copying test leaves out under ``metric_seed``."""
    g = torch.Generator().manual_seed(draw)
    real, labels = _draw(data_dir, n, g)
    random_labels = torch.randint(0, 10, (n,), generator=g)
    out = {"real": (real, labels)}
    for name, sigma in zip(NOISE_RUNGS, SIGMAS, strict=True):
        noise = torch.randn(real.shape, generator=g) * (sigma * 255.0)
        noisy = (real.float() + noise).round().clamp(0, 255).to(torch.uint8)
        out[name] = (noisy, labels)
    uniform = torch.randint(0, 256, real.shape, generator=g, dtype=torch.uint8)
    out["uniform"] = (uniform, random_labels)
    out["constant"] = (real[:1].expand_as(real).clone(), random_labels)
    test = load_part(DataOptions(), "test", data_dir)
    _, unseen = copying_split(len(test), metric_seed)
    unseen = unseen[:n].sort().values
    out["held-out"] = (test.images[unseen], test.labels[unseen])
    half = n // 2
    mixed = torch.cat([real[:half], uniform[half:]])
    out["copies+noise"] = (mixed, torch.cat([labels[:half], random_labels[half:]]))
    return out


def _draw(data_dir: str | None, n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    train = load_part(DataOptions(), "train", data_dir)
    if not 1 <= n <= len(train):
        raise BenchError(
            f"{n} images asked for, but the training set holds {len(train)}: ask for "
            f"1..{len(train)} (--samples, --inception-samples or the profile's counts)"
        )
    pick = torch.randperm(len(train), generator=g)[:n]
    return train.images[pick], train.labels[pick]


def real_draw(data_dir: str | None, n: int, draw: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` training images and their labels drawn by ``randperm`` seeded with ``draw``: the
    ladder's ``real`` rung, and the images of the real-data floor (:mod:`bench.floor`)."""
    return _draw(data_dir, n, torch.Generator().manual_seed(draw))


@dataclass(frozen=True)
class LadderCheck:
    """One metric's values along the ladder and whether they order as declared."""

    metric: str
    values: dict[str, float | None]
    ok: bool
    why: str


def check_order(metric: str, values: dict[str, float | None]) -> LadderCheck:
    """The ladder's rule, in the metric's declared direction: no rung of the noise ladder
    (real, sigma 0.1, 0.2, 0.4) better than the one before, sigma 0.4 worse than real, and
    uniform noise and the constant image both worse than real and than sigma 0.1."""
    sign = 1.0 if METRICS[metric].higher_is_better else -1.0
    if any(values.get(r) is None for r in RUNGS):
        missing = [r for r in RUNGS if values.get(r) is None]
        return LadderCheck(metric, values, False, f"no value for {', '.join(missing)}")
    score = {r: sign * float(values[r]) for r in RUNGS}  # higher is better from here on
    ladder = ("real", *NOISE_RUNGS)
    for better, worse in itertools.pairwise(ladder):
        if score[worse] > score[better]:
            return LadderCheck(metric, values, False, f"{worse} scores better than {better}")
    if not score["sigma 0.4"] < score["real"]:
        return LadderCheck(metric, values, False, "sigma 0.4 scores as well as real images")
    for bad in ("uniform", "constant"):
        for good in ("real", "sigma 0.1"):
            if not score[bad] < score[good]:
                return LadderCheck(metric, values, False, f"{bad} scores as well as {good}")
    return LadderCheck(metric, values, True, "ordered as declared")


def check_copying(metric: str, values: dict[str, float | None]) -> LadderCheck:
    """The data-copying test's rule: training images returned as samples (``real``) and
    half copies with half noise flagged (C_T below the flag), held-out real images not
    (|C_T| below it), uniform noise farther from the training set than real data (C_T > 0)."""
    rungs_read = ("real", "held-out", "copies+noise", "uniform")
    missing = [r for r in rungs_read if values.get(r) is None]
    if missing:
        return LadderCheck(metric, values, False, f"no value for {', '.join(missing)}")
    v = {r: float(values[r]) for r in rungs_read}  # type: ignore[arg-type]
    if not v["real"] < COPYING_FLAG:
        return LadderCheck(metric, values, False, "training images are not flagged as copies")
    if not v["copies+noise"] < COPYING_FLAG:
        return LadderCheck(metric, values, False, "half copies are not flagged as copies")
    if not abs(v["held-out"]) < -COPYING_FLAG:
        return LadderCheck(metric, values, False, "held-out real images are flagged")
    if not v["uniform"] > 0:
        return LadderCheck(metric, values, False, "uniform noise scores as close as real data")
    return LadderCheck(metric, values, True, "copies flagged, held-out real data not")


def run_ladder(scorer: Scorer, n: int, draw: int) -> list[LadderCheck]:
    """Score every rung with ``scorer`` (its settings decide the samples per extractor) and
    check every metric the real rung reports."""
    sets = rungs(scorer.data_dir, n, draw, scorer.settings.metric_seed)
    rows = {name: scorer.score_images(images, labels) for name, (images, labels) in sets.items()}
    for name, row in rows.items():
        if row.get("metrics_error"):
            raise RuntimeError(f"ladder rung {name!r}: {row['metrics_error']}")
    keys = [k for k in METRICS if METRICS[k].spread_of is None and k in rows["real"]["metrics"]]
    every = (*RUNGS, *COPYING_RUNGS)
    checks = [
        (check_copying if k in COPYING_KEYS else check_order)(
            k, {r: rows[r]["metrics"].get(k) for r in every}
        )
        for k in keys
    ]
    return checks
