"""The real-data floor of a run: real training images scored exactly as a generator's samples.

A perfect generator would score about what a draw of real training images scores against the
test split: FID and KID are not zero there (two finite samples of one distribution differ), so
a table without its floor hides how far each recipe still is from real data. ``bench floor``
scores ``--draws`` independent draws of the profile's sample counts (each a ``randperm`` of
the 60,000 training images seeded by the draw, as the sanity ladder's ``real`` rung) with the
run's evaluation settings and appends one row per draw to the run folder's ``floor.jsonl``;
``bench report`` prints their mean ± std above the run's rows.

Floor rows are result rows (``variant`` is :data:`FLOOR_VARIANT`, ``seed`` the draw) so the
results store reads and repairs them like any other, but they live in their own file: they are
never ranked against the variants.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.fsutil import append_line
from bench.provenance import cpu_description
from bench.runs import RunFolder, read_results
from bench.sanity import real_draw
from bench.scoring import Scorer

FLOOR = "floor.jsonl"
FLOOR_VARIANT = "real training images"


def floor_path(run_dir: str | Path) -> Path:
    """Where a run folder keeps its floor rows."""
    return Path(run_dir) / FLOOR


def read_floor(run_dir: str | Path) -> list[dict[str, Any]]:
    """The floor rows of a run folder (empty when it has none), oldest first."""
    return read_results(floor_path(run_dir))


def score_draw(scorer: Scorer, draw: int, profile: str) -> dict[str, Any]:
    """One floor row: ``draw``'s training images scored with ``scorer``'s settings (as many
    images as its largest sample count)."""
    s = scorer.settings
    n = max(s.num_samples, s.inception_samples)
    images, labels = real_draw(scorer.data_dir, n, draw)
    row: dict[str, Any] = {
        "variant": FLOOR_VARIANT,
        "seed": draw,
        "draw": draw,
        "status": "ok",
        "profile": profile,
        "images": {"dataset": "fashion-mnist", "split": "train", "size": n,
                   "draw": f"torch.randperm(60000, seed {draw})[:{n}]"},
        "cpu": cpu_description(),
    }  # fmt: skip
    row.update(scorer.score_images(images, labels))
    if row.get("metrics_error"):
        row["status"] = "failed"
    return row


def run_floor(
    run: RunFolder, scorer: Scorer, profile: str, draws: list[int], echo: Any = None
) -> list[dict[str, Any]]:
    """Score every draw that ``run``'s floor.jsonl does not hold yet (under the folder's lock)
    and append its row; returns all floor rows. Rerunning after an interruption scores only
    what is missing."""
    run.path.mkdir(parents=True, exist_ok=True)
    with run.locked():
        have = {int(r["seed"]) for r in read_floor(run.path) if r.get("status") == "ok"}
        for draw in draws:
            if draw in have:
                continue
            row = score_draw(scorer, draw, profile)
            append_line(floor_path(run.path), json.dumps(row, sort_keys=True, default=str))
            if echo is not None:
                echo(row)
    return read_floor(run.path)
