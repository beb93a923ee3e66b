"""Reference files: `bench reference export`, `--reference-stats`, refusal on a mismatch."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from bench.reference import FORMAT, load_reference
from tests.conftest import invoke, synthetic_split


def test_export_then_score_without_the_data(synthetic_dir: Path, tmp_path: Path) -> None:
    ref = tmp_path / "ref.npz"
    result = invoke(
        "reference", "export", "--kind", "fmnist", "--data-dir", str(synthetic_dir),
        "--out", str(ref),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    loaded = load_reference(ref)
    assert loaded.protocol["format"] == FORMAT and loaded.protocol["reference"]["size"] == 160
    assert loaded.features["features"].shape == (160, 128) and loaded.labels is not None
    with np.load(ref) as z:  # FID statistics in torch-fidelity's layout, beside the features
        assert z["mu"].shape == (128,) and z["sigma"].shape == (128, 128)
        feats = z["features"].astype(np.float64)
        assert np.allclose(z["mu"], feats.mean(0), atol=1e-5)
    images, _ = synthetic_split(15, seed=7)
    npz = tmp_path / "imgs.npz"
    np.savez(npz, images=images)
    common = ["score", str(npz), "--samples", "150", "--inception-samples", "0", "--json"]
    with_data = json.loads(invoke(*common, "--data-dir", str(synthetic_dir)).output)
    # No data anywhere (the isolated environment has none): the file alone suffices.
    imported = invoke(*common, "--reference-stats", str(ref))
    assert imported.exit_code == 0, imported.output
    got = json.loads(imported.output)
    assert got["metrics"]["fid_fmnist"] == pytest.approx(with_data["metrics"]["fid_fmnist"])
    assert got["protocol"]["fmnist"]["reference"]["imported_from"] == str(ref)


def test_mismatched_reference_is_refused(synthetic_dir: Path, tmp_path: Path) -> None:
    ref = tmp_path / "ref.npz"
    invoke("reference", "export", "--kind", "fmnist", "--data-dir", str(synthetic_dir),
           "--out", str(ref))  # fmt: skip
    with np.load(ref) as z:
        parts = {k: z[k] for k in z.files}
    protocol = json.loads(str(parts["protocol"]))
    protocol["weights_sha256"] = "0" * 64
    parts["protocol"] = np.array(json.dumps(protocol))
    bad = tmp_path / "other-weights.npz"
    np.savez(bad, **parts)
    out = tmp_path / "run"
    result = invoke(
        "run", "--variants", "dcgan", "--profile", "smoke", "--data-dir", str(synthetic_dir),
        "--reference-stats", str(bad), "--out", str(out),
    )  # fmt: skip
    assert result.exit_code == 2 and "would not be comparable" in result.output
    assert not (out / "results.jsonl").exists()  # refused before any training
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"junk")
    result = invoke("score", str(junk), "--reference-stats", str(junk))
    assert result.exit_code == 2 and "not a reference file" in result.output


def test_run_uses_the_imported_reference(synthetic_dir: Path, tmp_path: Path) -> None:
    ref = tmp_path / "ref.npz"
    invoke("reference", "export", "--kind", "fmnist", "--data-dir", str(synthetic_dir),
           "--out", str(ref))  # fmt: skip
    out = tmp_path / "run"
    result = invoke(
        "run", "--variants", "dcgan", "--profile", "smoke", "--kimg", "0.128", "--no-progress",
        "--data-dir", str(synthetic_dir), "--reference-stats", str(ref), "--out", str(out),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    (row,) = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    assert row["protocol"]["fmnist"]["reference"]["imported_from"] == str(ref)
    assert torch.isfinite(torch.tensor(row["metrics"]["fid_fmnist"]))
