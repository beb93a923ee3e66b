"""`bench score`: checkpoints, image folders and .npz files; every bad input one clear error."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import Result
from torchvision.io import write_png

from metrics.family import MetricInputError
from metrics.images import load_images
from tests.conftest import invoke, synthetic_split


def score(target: Path, synthetic_dir: Path, *extra: str) -> Result:
    return invoke(
        "score", str(target), "--data-dir", str(synthetic_dir), "--samples", "150",
        "--inception-samples", "0", "--device", "cpu", *extra,
    )  # fmt: skip


@pytest.fixture
def real_like(tmp_path: Path) -> np.ndarray:
    """150 images drawn like the synthetic test split (so FID against it is small)."""
    images, _ = synthetic_split(15, seed=7)
    return images


def test_npz_layouts_are_equivalent(tmp_path: Path, real_like: np.ndarray) -> None:
    base = load_images(_npz(tmp_path / "a.npz", real_like))
    assert base.shape == (150, 1, 28, 28) and base.dtype == torch.uint8
    nhwc = load_images(_npz(tmp_path / "b.npz", real_like[..., None]))
    nchw = load_images(_npz(tmp_path / "c.npz", real_like[:, None]))
    assert torch.equal(base, nhwc) and torch.equal(base, nchw)
    rgb = load_images(_npz(tmp_path / "d.npz", np.repeat(real_like[..., None], 3, axis=3)))
    assert rgb.shape == (150, 3, 28, 28)


def _npz(path: Path, array: np.ndarray, **more: np.ndarray) -> Path:
    np.savez(path, images=array, **more)
    return path


def test_folder_of_pngs(tmp_path: Path, real_like: np.ndarray) -> None:
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i, im in enumerate(real_like[:5]):
        write_png(torch.from_numpy(im)[None], str(folder / f"{i:03d}.png"))
    (folder / "notes.txt").write_text("ignored")
    loaded = load_images(folder)
    assert torch.equal(loaded, torch.from_numpy(real_like[:5])[:, None])


@pytest.mark.parametrize(
    "make, needle",
    [
        (lambda p: p.mkdir(), "no image files"),
        (lambda p: _npz(p.with_suffix(".npz"), np.zeros((4, 28, 28), np.float32)), "uint8"),
        (lambda p: _npz(p.with_suffix(".npz"), np.zeros((4, 5, 28, 28), np.uint8)), "shape"),
        (
            lambda p: _npz(p.with_suffix(".npz"), np.zeros((4, 28, 28), np.uint8), y=np.ones(4)),
            "one image array",
        ),
        (lambda p: p.with_suffix(".npz").write_bytes(b"junk"), "not a readable .npz"),
        (lambda p: p.with_suffix(".txt").write_text("x"), "folder of images or an .npz"),
    ],
)
def test_bad_inputs_are_one_clear_error(
    tmp_path: Path, synthetic_dir: Path, make, needle: str
) -> None:
    target = tmp_path / "target"
    made = make(target)
    path = made if isinstance(made, Path) else next(tmp_path.iterdir())
    with pytest.raises(MetricInputError, match=needle):
        load_images(path)
    result = score(path, synthetic_dir)
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert needle in result.output


def test_score_npz_real_vs_noise(
    tmp_path: Path, synthetic_dir: Path, real_like: np.ndarray
) -> None:
    """Images like the reference score far better than noise, on every distribution metric."""
    good = score(_npz(tmp_path / "good.npz", real_like), synthetic_dir, "--json")
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, size=real_like.shape, dtype=np.uint8)
    bad = score(_npz(tmp_path / "noise.npz", noise), synthetic_dir, "--json")
    assert good.exit_code == 0 and bad.exit_code == 0, good.output + bad.output
    g, b = json.loads(good.output), json.loads(bad.output)
    assert g["target"]["count"] == 150 and g["protocol"]["fmnist"]["num_samples"] == 150
    assert g["metrics"]["fid_fmnist"] * 5 < b["metrics"]["fid_fmnist"]
    assert g["metrics"]["kid_fmnist"] < b["metrics"]["kid_fmnist"]
    assert g["metrics"]["precision_fmnist"] > b["metrics"]["precision_fmnist"]
    assert "label_accuracy" not in g["metrics"]  # no labels for plain images


def test_score_checkpoint_equals_the_run_row(synthetic_dir: Path, tmp_path: Path) -> None:
    """Scoring a checkpoint reproduces every metric its run wrote, bit for bit (same G_ema
    in the same memory layout, same seed), for a variant of every architecture module."""
    same = ("--samples", "500", "--ppl-samples", "100", "--cas-samples", "500", "--json")
    # ^ the smoke profile's evaluation settings
    rows = {}
    for name, variants, extra in [
        ("mlp", "cgan-mlp", ["--set", "arch.g_widths=32,64,128,256"]),  # from config.json
        # One variant of every other architecture module: DCGAN (channels-last in the
        # harness), 64x64, upsampling, conditional conv, WGAN-GP, SN-GAN, ResNet with G_ema.
        ("conv", "dcgan-small,dcgan-64,dcgan-upsample,cdcgan,wgan-gp,sngan,sngan-ema", []),
    ]:
        out = tmp_path / name
        run = invoke(
            "run", "--variants", variants, "--profile", "smoke", "--kimg", "0.256",
            "--data-dir", str(synthetic_dir), "--no-progress", "--out", str(out), *extra,
        )  # fmt: skip
        assert run.exit_code == 0, run.output
        for row in map(json.loads, (out / "results.jsonl").open()):
            variant = row["variant"]
            rows[variant] = row
            result = score(out / variant / "seed0", synthetic_dir, *same)
            assert result.exit_code == 0, result.output
            got = json.loads(result.output)
            assert got["target"]["variant"] == variant and got["target"]["network"] == "G_ema"
            assert got["metrics"] == row["metrics"], variant
    assert len(rows) == 8
    out = tmp_path / "mlp"
    raw = score(out / "cgan-mlp" / "seed0", synthetic_dir, *same, "--network", "G")
    raw_got = json.loads(raw.output)
    assert raw_got["target"]["network"] == "G"  # the raw generator: not the run's numbers
    assert raw_got["metrics"]["fid_fmnist"] != pytest.approx(
        rows["cgan-mlp"]["metrics"]["fid_fmnist"]
    )
    human = score(out / "cgan-mlp" / "seed0" / "checkpoint.pt", synthetic_dir)
    assert human.exit_code == 0 and "label_accuracy" in human.output
    assert "lower is better" in human.output and "protocol fmnist" in human.output


def test_score_bad_checkpoint(tmp_path: Path, synthetic_dir: Path) -> None:
    bad = tmp_path / "checkpoint.pt"
    bad.write_bytes(b"nope")
    result = score(bad, synthetic_dir)
    assert result.exit_code == 2 and "not a readable fmgan-bench checkpoint" in result.output
