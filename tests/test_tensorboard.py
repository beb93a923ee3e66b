"""TensorBoard event files: written per job when tensorboard is installed, read back equal to
losses.csv and tracked.csv; a resume purges what a killed session wrote past its checkpoint;
without the package nothing is written and nothing warns."""

from __future__ import annotations

import csv
import sys
import warnings
from pathlib import Path

import pytest
from click.testing import CliRunner

from bench import hooks
from bench.cli import cli

event_accumulator = pytest.importorskip(
    "tensorboard.backend.event_processing.event_accumulator",
    reason="tensorboard is an optional extra (.[tensorboard], in .[dev])",
)


def train(out: Path, data: Path, kimg: str, *more: str) -> None:
    result = CliRunner().invoke(cli, [
        "train", "dcgan-small", "--profile", "smoke", "--kimg", kimg, "--device", "cpu",
        "--no-progress", "--data-dir", str(data), "--inception-samples", "0", "--out",
        str(out), *more,
    ], catch_exceptions=False)  # fmt: skip
    assert result.exit_code == 0, result.output


def events(job: Path) -> event_accumulator.EventAccumulator:
    acc = event_accumulator.EventAccumulator(
        str(job / "tensorboard"), size_guidance={event_accumulator.SCALARS: 0,
                                                 event_accumulator.IMAGES: 0},
    )  # fmt: skip
    acc.Reload()
    return acc


def csv_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def check_against_logs(job: Path, images_per_step: int) -> event_accumulator.EventAccumulator:
    """Every scalar equals its CSV twin (float32) at the images shown; no step twice."""
    acc = events(job)
    losses = csv_rows(job / "losses.csv")
    assert {"loss/d_loss", "loss/g_loss", "loss/d_real", "loss/d_fake"} <= set(
        acc.Tags()["scalars"]
    )
    for key in ("d_loss", "g_loss", "d_real"):
        got = [(e.step, e.value) for e in acc.Scalars(f"loss/{key}")]
        want = [(int(r["step"]) * images_per_step, float(r[key])) for r in losses]
        assert [s for s, _ in got] == [s for s, _ in want]
        assert all(
            abs(a - b) <= 1e-6 * max(1.0, abs(b)) for (_, a), (_, b) in zip(got, want, strict=True)
        )
    tracked = csv_rows(job / "tracked.csv")
    for key in ("fid_fmnist", "is_fmnist"):
        got = [(e.step, round(e.value, 2)) for e in acc.Scalars(f"metrics/{key}")]
        want = [(int(r["step"]) * images_per_step, round(float(r[key]), 2)) for r in tracked]
        assert got == want
    return acc


def test_events_match_the_logs_and_resume_purges(synthetic_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    job = out / "dcgan-small" / "seed0"
    ips = 128  # dcgan-small: batch 128, one D step
    train(out, synthetic_dir, "0.512")  # 4 steps: checkpoint, grid and tracked point at 4
    acc = check_against_logs(job, ips)
    assert [e.step for e in acc.Scalars("loss/d_loss")] == [128, 256, 384, 512]
    assert [e.step for e in acc.Scalars("metrics/fid_fmnist")] == [0, 512]
    shots = acc.Images("samples")
    assert [e.step for e in shots] == [0, 512] and shots[0].width > 200  # an 8x8 PNG grid

    # A session killed after the checkpoint had logged two more steps; the resume hides them.
    SummaryWriter = hooks.summary_writer_class()
    with SummaryWriter(log_dir=str(job / "tensorboard")) as ghost:
        for step in (5, 6):
            ghost.add_scalar("loss/d_loss", 1e6, step * ips)
    train(out, synthetic_dir, "1.024", "--extend")  # resumes at step 4, ends at step 8
    acc = check_against_logs(job, ips)
    assert [e.step for e in acc.Scalars("loss/d_loss")] == [ips * s for s in range(1, 9)]
    assert max(e.value for e in acc.Scalars("loss/d_loss")) < 1e3
    assert [e.step for e in acc.Scalars("metrics/fid_fmnist")] == [0, 512, 1024]
    assert [e.step for e in acc.Images("samples")] == [0, 512, 1024]


def test_without_tensorboard_nothing_is_written_and_nothing_warns(
    synthetic_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails
    assert hooks.summary_writer_class() is None
    out = tmp_path / "run"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        train(out, synthetic_dir, "0.256")
    job = out / "dcgan-small" / "seed0"
    assert (job / "losses.csv").is_file() and not (job / "tensorboard").exists()
