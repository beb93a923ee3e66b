"""Shared fixtures: synthetic Fashion-MNIST IDX files and an isolated environment per test."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner, Result

from bench import data as data_mod
from bench.cli import cli

# The real data: $FMGAN_DATA_DIR as the session started (a GPU machine's staged copy), else
# Debian's package.
REAL_DIR = Path(os.environ.get("FMGAN_DATA_DIR") or "/usr/share/datasets/fashion-mnist")
# The user's cache as it was before the per-test isolation: setup.sh put the
# offline Inception TorchScript there, and tests that compare against it read it from here.
USER_CACHE = data_mod.cache_dir()


def invoke(*args: object) -> Result:
    """``bench ARGS`` in this process (each argument str()-ed); an exception the CLI does not
    turn into a message propagates, so a traceback fails the test where it happens."""
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def invoke_caught(*args: object) -> Result:
    """:func:`invoke`, with click catching any exception into ``result.exception``: for
    tests that assert what the user sees when something breaks."""
    return CliRunner().invoke(cli, [str(a) for a in args])


def write_idx(path: Path, array: np.ndarray, compress: bool = True) -> Path:
    """Write ``array`` (uint8) as an IDX file, gzipped when ``compress``."""
    arr = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, arr.ndim]) + b"".join(d.to_bytes(4, "big") for d in arr.shape)
    blob = header + arr.tobytes()
    if compress:
        path = path.with_name(path.name + ".gz") if path.suffix != ".gz" else path
        path.write_bytes(gzip.compress(blob))
    else:
        path.write_bytes(blob)
    return path


def synthetic_split(n_per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Class-dependent images: a bright bar whose position and width encode the class."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(10, dtype=np.uint8), n_per_class)
    rng.shuffle(labels)
    images = rng.integers(0, 40, size=(len(labels), 28, 28), dtype=np.uint8)
    for i, c in enumerate(labels):
        images[i, 2 + 2 * c : 5 + 2 * c, 4 : 24 - c] = 220
    return images, labels


def make_dataset_dir(folder: Path, n_train_per_class: int = 64, n_test_per_class: int = 16) -> Path:
    """Write the four Fashion-MNIST files (synthetic content) into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for split, n, seed in (("train", n_train_per_class, 0), ("t10k", n_test_per_class, 1)):
        images, labels = synthetic_split(n, seed)
        write_idx(folder / f"{split}-images-idx3-ubyte", images)
        write_idx(folder / f"{split}-labels-idx1-ubyte", labels)
    return folder


ROOT = Path(__file__).resolve().parent.parent


def bench_process(*args: str) -> subprocess.Popen:
    """``python -m bench.cli ARGS`` as a child in its own session (a signal sent to it never
    reaches pytest), stdout and stderr captured together."""
    return subprocess.Popen(
        [sys.executable, "-m", "bench.cli", *args],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


@pytest.fixture(scope="session")
def synthetic_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with 640 training and 160 test images in the Fashion-MNIST file layout."""
    return make_dataset_dir(tmp_path_factory.mktemp("fmnist-synthetic"))


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Private cache and runs folders, no download, no Debian copy unless a test opts in."""
    monkeypatch.setenv("FMGAN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("FMGAN_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("FMGAN_NO_DOWNLOAD", "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))  # no hub-cached weights
    monkeypatch.delenv("FMGAN_INCEPTION_WEIGHTS", raising=False)
    monkeypatch.delenv("FMGAN_DATA_DIR", raising=False)
    monkeypatch.setattr(data_mod, "DEBIAN_DIR", tmp_path / "no-debian-copy")
    return tmp_path


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache folder for the session's real-data tests. Parsed data and reference
    features are cached under keys of their content (files, options, extractor weights,
    versions), so sharing them changes no result; it saves parsing the real files and
    extracting the 10k test-split features again in every test."""
    return tmp_path_factory.mktemp("shared-cache")


@pytest.fixture
def real_dir(shared_cache: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The real Fashion-MNIST (Debian's package), with the session's shared cache;
    integration tests skip without it."""
    if not (REAL_DIR / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip("real Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)")
    monkeypatch.setenv("FMGAN_CACHE_DIR", str(shared_cache))
    return REAL_DIR


def link_offline_pool3(cache: Path) -> bool:
    """Link the user's prepared offline Inception pool3 (./setup.sh: `bench weights fetch`)
    into a test's ``cache``; False when it is not prepared (callers skip or leave the
    Inception metrics out)."""
    from metrics import inception as inc

    pool3 = USER_CACHE / inc.OFFLINE_DIR / inc.OFFLINE_FILE
    if not pool3.is_file():
        return False
    inc.offline_pool3_weights(USER_CACHE)  # records the file's sha256 if not yet done
    (cache / inc.OFFLINE_DIR).mkdir(parents=True, exist_ok=True)
    for name in (inc.OFFLINE_FILE, inc.OFFLINE_FILE + ".sha256"):
        link = cache / inc.OFFLINE_DIR / name
        if not link.exists():
            link.symlink_to(pool3.with_name(name))
    return True
