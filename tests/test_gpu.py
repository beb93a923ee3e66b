"""The GPU path: what a user does on CUDA works there, and what a GPU changes is measured.

Skipped without CUDA (every CI machine); on a GPU machine: `python -m pytest -m gpu`
(docs/gpu.md).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from bench.checkpoint import load_checkpoint
from bench.data import load_part, random_dataset
from bench.harness import Trainer, TrainSettings
from bench.runs import RunFolder
from metrics.extractors import FMNIST_EXTRACTOR, FMNISTEvaluatorExtractor
from metrics.inception import InceptionUnavailable, load_inception
from metrics.suite import extract
from models.data_options import DataOptions
from models.registry import get_variant
from tests.conftest import USER_CACHE, invoke

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]

SMOKE = ["--profile", "smoke", "--device", "cuda", "--no-progress"]


def test_run_trains_tracks_and_scores_on_cuda(real_dir: Path, tmp_path: Path) -> None:
    """`bench run` on CUDA for the loop's every mechanism: BCE, WGAN-GP (dropout, gradient
    penalty, n_critic), a conditional MLP, spectral norm with DiffAugment and the EMA ramp."""
    out = tmp_path / "run"
    names = "dcgan,wgan-gp,cgan-mlp-2class,sngan-ema-diffaug"
    result = invoke("run", "--variants", names, *SMOKE, "--data-dir", str(real_dir),
                    "--out", str(out))  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = RunFolder(out).latest()
    assert len(rows) == 4
    for (name, _), row in rows.items():
        assert row["status"] == "ok" and row["device"] == "cuda", name
        assert row["metrics"]["fid_fmnist"] > 0 and row["metrics"]["is_fmnist"] >= 1, name
        assert "ppl" in row["metrics"] and (out / row["paths"]["tracked"]).is_file(), name
        ckpt = load_checkpoint(out / row["paths"]["checkpoint"])  # readable on a CPU machine
        assert "cuda" in ckpt["rng"] and ckpt["step"] == row["step"], name


def test_train_then_score_on_cuda_reproduce_the_row(real_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "t"
    result = invoke("train", "cgan-mlp", *SMOKE, "--data-dir", str(real_dir), "--out", str(out))
    assert result.exit_code == 0, result.output
    row = RunFolder(out).latest()[("cgan-mlp", 0)]
    scored = invoke(
        "score", str(out / "cgan-mlp" / "seed0"), "--device", "cuda", "--samples", "500",
        "--inception-samples", "0", "--ppl-samples", "0", "--data-dir", str(real_dir), "--json",
    )  # fmt: skip
    assert scored.exit_code == 0, scored.output
    got = json.loads(scored.output)["metrics"]
    for key in ("fid_fmnist", "is_fmnist", "kid_fmnist", "label_accuracy"):
        assert got[key] == pytest.approx(row["metrics"][key], rel=1e-6), key


@pytest.mark.parametrize("name", ["dcgan", "wgan-gp", "sngan-ema-diffaug"])
def test_resume_on_cuda(name: str, tmp_path: Path) -> None:
    """Train 6 steps straight, and 4 + resume to 6. On the CPU the two are bit-identical;
    on CUDA this measures what holds: the resumed job restores the CUDA RNG and continues,
    and its weights equal the straight run's (cuDNN and atomics may break bit-equality:
    the assertion below is what a GPU showed, docs/gpu.md)."""
    v = get_variant(name)
    per_step = v.batch_size * v.build_loss().n_critic / 1000
    data = random_dataset(v.batch_size * v.build_loss().n_critic * 3, 28, v.data.class_ids)

    def cfg(steps: int) -> TrainSettings:
        return TrainSettings(
            kimg=steps * per_step, progress=False, checkpoint_kimg=per_step, device="cuda"
        )

    straight = Trainer(v, data, cfg(6), tmp_path / "a")
    straight.train()
    Trainer(v, data, cfg(4), tmp_path / "b").train()
    resumed = Trainer(v, data, cfg(6), tmp_path / "b")
    assert resumed.train().resumed_from_step == 4
    worst = 0.0
    for attr in ("G", "D", "G_ema"):
        a, b = getattr(straight, attr).state_dict(), getattr(resumed, attr).state_dict()
        for k in a:
            if a[k].is_floating_point():
                worst = max(worst, (a[k] - b[k]).abs().max().item())
    print(f"{name}: max |straight - resumed| after 6 steps on CUDA = {worst:.3g}")
    assert worst <= 1e-4


def test_jobs_share_one_gpu(real_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "jobs"
    result = invoke("run", "--variants", "dcgan-small,cgan-mlp-2class", "--seeds", "2", *SMOKE,
                    "--jobs", "4", "--data-dir", str(real_dir), "--out", str(out))  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = RunFolder(out).latest()
    assert len(rows) == 4 and all(r["status"] == "ok" for r in rows.values())
    assert {r["device"] for r in rows.values()} <= {
        f"cuda:{i}" for i in range(torch.cuda.device_count())
    }


def test_perf_on_cuda_prints_ratios() -> None:
    result = invoke("perf", "--variants", "dcgan,sngan-ema", "--device", "cuda", "--steps", "5")
    assert result.exit_code == 0, result.output
    lines = [x.split() for x in result.output.splitlines() if x.startswith(("dcgan", "sngan"))]
    assert len(lines) == 8 and all(float(x[2]) > 0 for x in lines)  # reference + 3 each


def test_features_on_the_gpu_match_the_cpu(real_dir: Path) -> None:
    """The evaluator and Inception pool3 on CUDA agree with the CPU's features (scoring moves
    the extractors to the run's device)."""
    images = load_part(DataOptions(), "test", real_dir).images[:512]
    ev = FMNISTEvaluatorExtractor(FMNIST_EXTRACTOR, ["features"])
    cpu = extract(ev, images)["features"]
    gpu = extract(ev.to("cuda"), images)["features"]
    assert (cpu - gpu).abs().max().item() <= 1e-3 * cpu.abs().max().item()
    try:
        inc = load_inception(USER_CACHE).extractor
    except InceptionUnavailable as exc:
        pytest.skip(f"no Inception weights here: {exc}")
    cpu = extract(inc, images[:64], 64)["2048"]
    gpu = extract(inc.to("cuda"), images[:64], 64)["2048"]
    assert (cpu - gpu).abs().max().item() <= 1e-3 * cpu.abs().max().item()
