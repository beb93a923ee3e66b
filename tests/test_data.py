"""Data layer: IDX parsing and validation, locating the files, subsets, caching, batching."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
import torch

from bench import data as D
from bench.errors import DataFormatError, DataNotFoundError
from models.data_options import DataOptions
from tests.conftest import make_dataset_dir, synthetic_split, write_idx


def test_idx_round_trip_gz_and_raw(tmp_path: Path) -> None:
    arr = np.arange(2 * 28 * 28, dtype=np.uint32).astype(np.uint8).reshape(2, 28, 28)
    gz = write_idx(tmp_path / "a-idx3-ubyte", arr)
    raw = write_idx(tmp_path / "b-idx3-ubyte", arr, compress=False)
    assert np.array_equal(D.read_idx(gz, 3), arr)
    assert np.array_equal(D.read_idx(raw, 3), arr)


def test_parse_split_returns_tensors(tmp_path: Path) -> None:
    images, labels = synthetic_split(3, 0)
    ip = write_idx(tmp_path / "i", images)
    lp = write_idx(tmp_path / "l", labels)
    x, y = D.parse_split(ip, lp)
    assert x.dtype == torch.uint8 and x.shape == (30, 28, 28)
    assert y.dtype == torch.int64 and torch.equal(y, torch.from_numpy(labels.astype(np.int64)))


@pytest.mark.parametrize(
    ("mutate", "needle"),
    [
        (lambda b: b[: len(b) // 2], "truncated gzip"),  # cut the compressed stream
        (lambda b: b"\x1f\x8b\x08garbage" + b[10:], "corrupted or truncated gzip"),
    ],
)
def test_damaged_gzip_names_file(tmp_path: Path, mutate, needle: str) -> None:
    images, _ = synthetic_split(2, 0)
    p = write_idx(tmp_path / "img-idx3-ubyte", images)
    p.write_bytes(mutate(p.read_bytes()))
    with pytest.raises(DataFormatError, match=r"img-idx3-ubyte\.gz") as err:
        D.read_idx(p, 3)
    assert needle.split()[0] in str(err.value)


def _raw_idx(dims: tuple[int, ...], payload: int, magic: bytes | None = None) -> bytes:
    header = magic or bytes([0, 0, 8, len(dims)])
    return header + b"".join(d.to_bytes(4, "big") for d in dims) + bytes(payload)


@pytest.mark.parametrize(
    ("blob", "ndim", "needle"),
    [
        (_raw_idx((5, 28, 28), 5 * 784 - 10), 3, "truncated"),
        (_raw_idx((5, 28, 28), 5 * 784 + 3), 3, "trailing bytes"),
        (_raw_idx((5, 28, 28), 5 * 784, magic=b"\x00\x00\x0d\x03"), 3, "magic"),
        (_raw_idx((5,), 5), 3, "1 dimension"),
        (b"\x00\x00", 3, "too short"),
        (bytes([0, 0, 8, 3, 0, 0]), 3, "truncated IDX header"),
    ],
)
def test_bad_idx_payloads(tmp_path: Path, blob: bytes, ndim: int, needle: str) -> None:
    p = tmp_path / "x-idx-ubyte.gz"
    p.write_bytes(gzip.compress(blob))
    with pytest.raises(DataFormatError, match=needle) as err:
        D.read_idx(p, ndim)
    assert str(p) in str(err.value)


def test_labels_out_of_range_and_count_mismatch(tmp_path: Path) -> None:
    images, labels = synthetic_split(2, 0)
    ip = write_idx(tmp_path / "i", images)
    bad = labels.copy()
    bad[3] = 10
    with pytest.raises(DataFormatError, match="label 10 out of range"):
        D.parse_split(ip, write_idx(tmp_path / "l", bad))
    with pytest.raises(DataFormatError, match="holds 20 images but"):
        D.parse_split(ip, write_idx(tmp_path / "l2", labels[:-1]))
    small = np.zeros((2, 20, 20), np.uint8)
    with pytest.raises(DataFormatError, match="20x20"):
        D.parse_split(write_idx(tmp_path / "s", small), write_idx(tmp_path / "sl", labels[:2]))


def test_locate_explicit_env_and_missing(tmp_path: Path, synthetic_dir: Path, monkeypatch) -> None:
    assert D.locate(synthetic_dir) == synthetic_dir
    monkeypatch.setenv(D.ENV_DATA_DIR, str(synthetic_dir))
    assert D.locate() == synthetic_dir
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataNotFoundError, match="lacks train-images-idx3-ubyte"):
        D.locate(empty)  # an explicit folder never silently falls back elsewhere


def test_locate_debian_then_three_ways_message(tmp_path: Path, monkeypatch) -> None:
    with pytest.raises(DataNotFoundError) as err:
        D.locate()
    msg = str(err.value)
    assert "--data-dir" in msg and "apt-get install dataset-fashion-mnist" in msg
    assert "download" in msg and "1." in msg and "2." in msg and "3." in msg
    debian = make_dataset_dir(tmp_path / "debian", 1, 1)
    monkeypatch.setattr(D, "DEBIAN_DIR", debian)
    assert D.locate() == debian


def test_failed_download_is_one_clear_error(monkeypatch) -> None:
    import torchvision

    def offline(*args, **kwargs):
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz:\nno network")

    monkeypatch.delenv(D.NO_DOWNLOAD_ENV)
    monkeypatch.setattr(torchvision.datasets, "FashionMNIST", offline)
    with pytest.raises(DataNotFoundError, match="download failed: Error downloading"):
        D.locate()


def test_load_part_subsets(synthetic_dir: Path) -> None:
    full = D.load_part(DataOptions(), "train", synthetic_dir)
    assert full.images.shape == (640, 1, 28, 28) and full.images.dtype == torch.uint8
    two = D.load_part(DataOptions(classes=(0, 1)), "train", synthetic_dir)
    assert set(two.labels.tolist()) == {0, 1} and len(two) == 128
    test_two = D.load_part(DataOptions(classes=(0, 1)), "test", synthetic_dir)
    assert set(test_two.labels.tolist()) == {0, 1} and len(test_two) == 32


def test_fraction_is_seeded_and_fixed(synthetic_dir: Path) -> None:
    half = DataOptions(fraction=0.5)
    a = D.load_part(half, "train", synthetic_dir)
    b = D.load_part(half, "train", synthetic_dir)
    other = D.load_part(DataOptions(fraction=0.5, fraction_seed=1), "train", synthetic_dir)
    assert len(a) == 320
    assert torch.equal(a.images, b.images)
    assert not torch.equal(a.images, other.images)
    assert len(D.load_part(half, "test", synthetic_dir)) == 160  # test split never subsampled


def test_eighty_ten_ten_split_is_disjoint_and_from_train(synthetic_dir: Path) -> None:
    opts = DataOptions(classes=(0, 1), split="80/10/10")
    parts = {p: D.load_part(opts, p, synthetic_dir) for p in ("train", "val", "holdout")}
    assert [len(parts[p]) for p in ("train", "val", "holdout")] == [102, 13, 13]
    flat = {p: {bytes(x.numpy().tobytes()) for x in parts[p].images} for p in parts}
    assert not flat["train"] & flat["val"] and not flat["train"] & flat["holdout"]
    train_file = D.load_part(DataOptions(classes=(0, 1)), "train", synthetic_dir)
    pool = {bytes(x.numpy().tobytes()) for x in train_file.images}
    assert flat["train"] | flat["val"] | flat["holdout"] <= pool
    with pytest.raises(ValueError, match="80/10/10"):
        D.load_part(DataOptions(), "val", synthetic_dir)


def test_resolution_64(synthetic_dir: Path) -> None:
    x = D.load_part(DataOptions(resolution=64), "train", synthetic_dir).images
    assert x.shape == (640, 1, 64, 64) and x.dtype == torch.uint8
    small = D.load_part(DataOptions(), "train", synthetic_dir).images.float()
    down = torch.nn.functional.avg_pool2d(x.float(), 2, ceil_mode=False)
    down = torch.nn.functional.interpolate(down, size=28, mode="bilinear", align_corners=False)
    assert (down - small).abs().mean() < 12  # the same picture, upscaled


def test_raw_tensors_are_cached(synthetic_dir: Path, monkeypatch) -> None:
    first = D.load_raw("train", synthetic_dir)

    def boom(*a, **k):
        raise AssertionError("parsed again despite the cache")

    monkeypatch.setattr(D, "parse_split", boom)
    second = D.load_raw("train", synthetic_dir)
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])


def test_damaged_cache_is_rebuilt(synthetic_dir: Path) -> None:
    D.load_raw("test", synthetic_dir)
    for f in (D.cache_dir() / "tensors").glob("fmnist-test-*.pt"):
        f.write_bytes(b"not a torch file")
    images, _ = D.load_raw("test", synthetic_dir)
    assert images.shape == (160, 28, 28)


def test_to_model_range() -> None:
    x = torch.tensor([0, 255, 128], dtype=torch.uint8)
    y = D.to_model_range(x)
    assert y.tolist()[0] == -1.0 and y.tolist()[1] == 1.0
    assert abs(y[2].item() - (128 - 127.5) / 127.5) < 1e-7
    assert D.to_model_range(x, (0.0, 1.0)).tolist()[1] == 1.0


def test_epoch_sampler_is_deterministic_permutation() -> None:
    s1, s2 = D.EpochSampler(10, 3, seed=5), D.EpochSampler(10, 3, seed=5)
    assert s1.batches_per_epoch == 3
    epoch0 = torch.cat([s1.indices(i) for i in range(3)])
    assert len(set(epoch0.tolist())) == 9  # one epoch: no repeats, last partial batch dropped
    assert torch.equal(s2.indices(4), s1.indices(4))  # random access, no hidden state
    assert not torch.equal(torch.cat([s1.indices(i) for i in range(3, 6)]), epoch0)
    with pytest.raises(ValueError, match="fewer than one batch"):
        D.EpochSampler(2, 3, 0)


@pytest.mark.parametrize(
    "bad",
    [
        {"classes": ()},
        {"classes": (0, 0)},
        {"classes": (10,)},
        {"fraction": 0.0},
        {"fraction": 1.5},
        {"resolution": 32},
        {"split": "70/30"},
        {"value_range": (1.0, -1.0)},
    ],
)
def test_data_options_validation(bad: dict) -> None:
    with pytest.raises(ValueError):
        DataOptions(**bad).validate()


@pytest.mark.integration
def test_real_fashion_mnist_counts(real_dir: Path) -> None:
    train = D.load_part(DataOptions(), "train", real_dir)
    test = D.load_part(DataOptions(), "test", real_dir)
    assert len(train) == 60_000 and len(test) == 10_000
    assert torch.bincount(train.labels).tolist() == [6000] * 10
    half = D.load_part(DataOptions(fraction=0.5), "train", real_dir)
    assert len(half) == 30_000


@pytest.mark.parametrize(
    ("value", "disabled"),
    [("", False), ("0", False), ("false", False), ("Off", False), ("1", True), ("yes", True)],
)
def test_no_download_switch_is_read_one_way(monkeypatch, value: str, disabled: bool) -> None:
    """Data, Inception and LPIPS all ask metrics.common; FMGAN_NO_DOWNLOAD=0 allows."""
    from metrics.common import downloads_disabled

    monkeypatch.setenv("FMGAN_NO_DOWNLOAD", value)
    assert downloads_disabled() is disabled
