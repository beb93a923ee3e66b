"""`bench.api`: train, score and load_results from Python give what the commands give."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import bench.api as fb
from bench.checkpoint import load_generator
from bench.cli import cli as cli_group
from bench.errors import BenchError

TINY = {"profile": "smoke", "kimg": 0.256, "progress": False}


def test_train_load_results_and_score(synthetic_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    lines: list[str] = []
    rows = fb.train(["dcgan-small", "cgan-mlp-2class"], seeds=[0], out=out, device="cpu",
                    data_dir=synthetic_dir, echo=lines.append, **TINY)  # fmt: skip
    assert sorted((r["variant"], r["status"]) for r in rows) == [
        ("cgan-mlp-2class", "ok"), ("dcgan-small", "ok"),
    ]  # fmt: skip
    assert lines[0].startswith(f"run folder: {out}  (profile smoke, 0.256 kimg per job, 2 job(s)")
    assert fb.train("dcgan-small", 1, out=out, device="cpu", data_dir=synthetic_dir,
                    echo=lines.append, **TINY) == []  # a rerun: finished, skipped  # fmt: skip

    frame = fb.load_results(out)
    fid = frame[frame["metric"] == "fid_fmnist"].set_index("variant")["value"]
    by_variant = {r["variant"]: r for r in rows}
    assert fid.to_dict() == {v: r["metrics"]["fid_fmnist"] for v, r in by_variant.items()}
    assert set(frame["run"]) == {"run"} and frame["higher_is_better"].notna().all()

    # The checkpoint, its generator module and its samples scored from Python.
    same = {"samples": 500, "ppl_samples": 100, "device": "cpu", "data_dir": synthetic_dir}
    job = out / "dcgan-small" / "seed0"
    scored = fb.score(job, **same)
    assert scored["metrics"] == by_variant["dcgan-small"]["metrics"]
    assert scored["target"]["network"] == "G_ema"
    _, G, _ = load_generator(job)
    as_module = fb.score(G, variant="dcgan-small", **same)
    assert as_module["metrics"] == scored["metrics"]
    assert as_module["target"] == {"generator": type(G).__name__, "variant": "dcgan-small"}
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (300, 28, 28), generator=g, dtype=torch.uint8).numpy()
    noise = fb.score(images, samples=300, device="cpu", data_dir=synthetic_dir)
    assert noise["target"] == {"images": "array", "count": 300, "shape": [1, 28, 28]}
    np.savez(tmp_path / "noise.npz", images=images)  # the command on the same images
    cli = CliRunner().invoke(cli_group, ["score", str(tmp_path / "noise.npz"), "--samples", "300",
                                         "--device", "cpu", "--data-dir", str(synthetic_dir),
                                         "--json"])  # fmt: skip
    assert cli.exit_code == 0, cli.output
    assert json.loads(cli.output)["metrics"] == noise["metrics"]


def test_api_mistakes(synthetic_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(BenchError, match="unknown variant 'nope'"):
        fb.train("nope", out=tmp_path / "a", data_dir=synthetic_dir, **TINY)
    with pytest.raises(BenchError, match=r"--set: .*not a setting"):
        fb.train("dcgan-small", out=tmp_path / "b", data_dir=synthetic_dir,
                 overrides={"optim.momentum": "1"}, **TINY)  # fmt: skip
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    with pytest.raises(ValueError, match="needs variant="):
        fb.score(torch.nn.Identity(), data_dir=synthetic_dir)
    with pytest.raises(ValueError, match="must be uint8"):
        fb.score(np.zeros((10, 28, 28), np.float32), data_dir=synthetic_dir)
    with pytest.raises(BenchError, match="no rows yet"):
        fb.load_results(tmp_path)
