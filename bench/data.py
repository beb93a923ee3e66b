"""Fashion-MNIST: find the files, parse and validate IDX, cache tensors, select subsets, batch.

Where the data comes from, in order:
  1. an explicit folder (``--data-dir`` or the ``FMGAN_DATA_DIR`` environment variable);
  2. Debian's ``dataset-fashion-mnist`` package in ``/usr/share/datasets/fashion-mnist``;
  3. torchvision's download into the cache folder (needs internet).

The parsed uint8 tensors are cached (``FMGAN_CACHE_DIR``, default ``~/.cache/fmgan-bench``)
under a key of the source files' path, size and mtime, so that after the first load the
training tensor is ready in a fraction of a second. Images stay uint8 in memory and are
scaled to the model's value range one batch at a time.

The official 10,000-image test split is the reference set for metrics and is never trained on:
:func:`load_part` only ever returns training-file images for the ``train``/``val``/``holdout``
parts.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F

from bench.errors import DataFormatError, DataNotFoundError
from metrics.common import CLASS_NAMES, NO_DOWNLOAD_ENV, atomic_path, downloads_disabled
from models.data_options import NUM_CLASSES, DataOptions

__all__ = ["CLASS_NAMES", "NUM_CLASSES", "DataOptions", "Dataset", "EpochSampler", "load_part"]

IMAGE_SIZE = 28
FILES: dict[str, tuple[str, str]] = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
ENV_DATA_DIR = "FMGAN_DATA_DIR"
ENV_CACHE_DIR = "FMGAN_CACHE_DIR"
_CACHE_VERSION = 1  # bump when the cached tensor layout changes

Part = Literal["train", "val", "holdout", "test"]


def cache_dir() -> Path:
    """Folder for parsed-data caches and downloads (``FMGAN_CACHE_DIR`` overrides)."""
    env = os.environ.get(ENV_CACHE_DIR)
    if env:
        return Path(env).expanduser()
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "fmgan-bench"


# --------------------------------------------------------------------------- IDX parsing


def _read_bytes(path: Path) -> bytes:
    """Read a file, transparently gunzipping ``*.gz``; map decoder failures to DataFormatError."""
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as fh:
                return fh.read()
        return path.read_bytes()
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise DataFormatError(f"{path}: corrupted or truncated gzip stream ({exc})") from None
    except OSError as exc:
        raise DataFormatError(f"{path}: cannot be read ({exc})") from None


def read_idx(path: str | os.PathLike[str], expect_ndim: int) -> np.ndarray:
    """Parse an IDX file of unsigned bytes (the MNIST family's format) with validation.

    Checks the magic number (two zero bytes, type 0x08, dimension count), that the payload
    length equals the product of the declared dimensions exactly, and the expected rank.

    Raises:
        DataFormatError: naming the file and what is wrong with it.
    """
    p = Path(path)
    raw = _read_bytes(p)
    if len(raw) < 4:
        raise DataFormatError(f"{p}: file is {len(raw)} bytes, too short for an IDX header")
    if raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise DataFormatError(
            f"{p}: bad IDX magic number 0x{raw[:4].hex()} (expected 0x0000080{expect_ndim}: "
            f"unsigned bytes, {expect_ndim} dimension(s))"
        )
    ndim = raw[3]
    if ndim != expect_ndim:
        raise DataFormatError(f"{p}: IDX file has {ndim} dimension(s), expected {expect_ndim}")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataFormatError(f"{p}: truncated IDX header")
    dims = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = int(np.prod(dims)) if dims else 0
    payload = len(raw) - header
    if payload != expected:
        what = "truncated" if payload < expected else "has trailing bytes"
        raise DataFormatError(
            f"{p}: {what}: header declares shape {dims} ({expected} bytes of data) "
            f"but the file holds {payload}"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def parse_split(images_path: Path, labels_path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """Read and cross-validate one image file and its label file.

    Returns:
        ``(images, labels)``: uint8 ``(N, 28, 28)`` and int64 ``(N,)``.
    """
    images = read_idx(images_path, expect_ndim=3)
    labels = read_idx(labels_path, expect_ndim=1)
    if images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
        raise DataFormatError(
            f"{images_path}: images are {images.shape[1]}x{images.shape[2]}, "
            f"Fashion-MNIST images are {IMAGE_SIZE}x{IMAGE_SIZE}"
        )
    if images.shape[0] != labels.shape[0]:
        raise DataFormatError(
            f"{images_path} holds {images.shape[0]} images but {labels_path} holds "
            f"{labels.shape[0]} labels"
        )
    if labels.size and int(labels.max()) >= NUM_CLASSES:
        raise DataFormatError(
            f"{labels_path}: label {int(labels.max())} out of range 0..{NUM_CLASSES - 1}"
        )
    return torch.from_numpy(images.copy()), torch.from_numpy(labels.astype(np.int64))


# --------------------------------------------------------------------------- locating files


def _find(folder: Path, stem: str) -> Path | None:
    for name in (f"{stem}.gz", stem):
        if (folder / name).is_file():
            return folder / name
    return None


def data_files(folder: Path) -> list[Path]:
    """The four Fashion-MNIST files in ``folder`` (gzipped or not); DataNotFoundError if any
    is missing."""
    found = [_find(folder, s) for pair in FILES.values() for s in pair]
    if not all(found):
        raise DataNotFoundError(_how_to_provide(f"{folder} lacks some of the four files"))
    return [f for f in found if f is not None]


def _complete(folder: Path) -> bool:
    return all(_find(folder, stem) for pair in FILES.values() for stem in pair)


def _download_folder() -> Path:
    return cache_dir() / "torchvision" / "FashionMNIST" / "raw"


def _how_to_provide(reason: str) -> str:
    names = ", ".join(f"{s}.gz" for pair in FILES.values() for s in pair)
    return (
        f"Fashion-MNIST not found ({reason}). Provide it in one of three ways:\n"
        f"  1. pass --data-dir DIR or set {ENV_DATA_DIR}=DIR, DIR holding {names};\n"
        f"  2. install Debian's package as root: apt-get install dataset-fashion-mnist "
        f"(puts the files in {DEBIAN_DIR});\n"
        f"  3. allow torchvision to download it into {_download_folder()} "
        f"(needs internet; unset {NO_DOWNLOAD_ENV})."
    )


def locate(data_dir: str | os.PathLike[str] | None = None, download: bool = True) -> Path:
    """Return the folder holding the four Fashion-MNIST files, downloading if allowed.

    An explicit folder (argument or ``FMGAN_DATA_DIR``) must hold the files: silently falling
    back to another copy would train on data the user did not choose.

    Raises:
        DataNotFoundError: with the three ways to provide the data.
    """
    explicit = data_dir if data_dir is not None else os.environ.get(ENV_DATA_DIR) or None
    if explicit is not None:
        folder = Path(explicit).expanduser()
        missing = [s for pair in FILES.values() for s in pair if not _find(folder, s)]
        if missing:
            raise DataNotFoundError(
                _how_to_provide(f"{folder} lacks {', '.join(m + '[.gz]' for m in missing)}")
            )
        return folder
    for folder in (DEBIAN_DIR, _download_folder()):
        if _complete(folder):
            return folder
    if not download or downloads_disabled():
        raise DataNotFoundError(_how_to_provide("no local copy and downloading is disabled"))
    try:
        import torchvision

        torchvision.datasets.FashionMNIST(str(cache_dir() / "torchvision"), download=True)
    except Exception as exc:  # torchvision raises RuntimeError/URLError/OSError variously
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataNotFoundError(_how_to_provide(f"download failed: {first}")) from None
    if not _complete(_download_folder()):
        raise DataNotFoundError(_how_to_provide("download finished without the four files"))
    return _download_folder()


# --------------------------------------------------------------------------- cached loading


def _file_key(path: Path) -> str:
    st = path.stat()
    return f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"


def _cached(path: Path, compute: Callable[[], Any]) -> Any:
    """Load ``path`` (torch, weights only) or compute the value and save it there atomically.

    A damaged cache file is rebuilt, never trusted.
    """
    if path.is_file():
        try:
            return torch.load(path, weights_only=True)
        except Exception:
            path.unlink(missing_ok=True)
    value = compute()
    with atomic_path(path) as tmp:
        torch.save(value, tmp)
    return value


def _load_raw_keyed(
    split: Literal["train", "test"], data_dir: str | os.PathLike[str] | None
) -> tuple[torch.Tensor, torch.Tensor, str, Path]:
    folder = locate(data_dir)
    img_path = _find(folder, FILES[split][0])
    lbl_path = _find(folder, FILES[split][1])
    assert img_path is not None and lbl_path is not None  # locate() guarantees both
    key = hashlib.sha256(
        f"v{_CACHE_VERSION}|{_file_key(img_path)}|{_file_key(lbl_path)}".encode()
    ).hexdigest()[:20]
    key = f"fmnist-{split}-{key}"
    blob = _cached(
        cache_dir() / "tensors" / f"{key}.pt",
        lambda: dict(zip(("images", "labels"), parse_split(img_path, lbl_path), strict=True)),
    )
    return blob["images"], blob["labels"], key, folder


def load_raw(
    split: Literal["train", "test"], data_dir: str | os.PathLike[str] | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Load one official split as uint8 images ``(N, 28, 28)`` and int64 labels, cached."""
    images, labels, _, _ = _load_raw_keyed(split, data_dir)
    return images, labels


@dataclass(frozen=True)
class Dataset:
    """uint8 images ``(N, 1, R, R)`` and int64 labels of one part, plus where they came from."""

    images: torch.Tensor
    labels: torch.Tensor
    part: str
    source: str

    def __len__(self) -> int:
        return int(self.images.shape[0])


def random_dataset(n: int, resolution: int, class_ids: tuple[int, ...], seed: int = 0) -> Dataset:
    """Uniform-noise uint8 images with labels from ``class_ids``: for benchmarks and tests,
    where cost or shapes matter and content does not."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.tensor(class_ids)
    return Dataset(
        images=torch.randint(
            0, 256, (n, 1, resolution, resolution), dtype=torch.uint8, generator=g
        ),
        labels=ids[torch.randint(len(ids), (n,), generator=g)],
        part="train",
        source="random",
    )


def _resize(images: torch.Tensor, resolution: int, key: str) -> torch.Tensor:
    """Bilinear upscale of uint8 ``(N, 28, 28)`` to ``resolution``, rounded back to uint8, cached.

    Rounding to uint8 matches what seed 001 did (torchvision ``Resize(64)`` on PIL images).
    """
    if resolution == IMAGE_SIZE:
        return images

    def compute() -> torch.Tensor:
        out = torch.empty((images.shape[0], resolution, resolution), dtype=torch.uint8)
        for i in range(0, images.shape[0], 4096):
            chunk = images[i : i + 4096, None].float()
            up = F.interpolate(
                chunk, size=(resolution, resolution), mode="bilinear", align_corners=False
            )
            out[i : i + 4096] = up[:, 0].round().clamp(0, 255).to(torch.uint8)
        return out

    return _cached(cache_dir() / "tensors" / f"{key}-r{resolution}.pt", compute)


def _split_indices(n: int, seed: int) -> dict[str, torch.Tensor]:
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_train, n_val = round(0.8 * n), round(0.1 * n)
    return {
        "train": perm[:n_train],
        "val": perm[n_train : n_train + n_val],
        "holdout": perm[n_train + n_val :],
    }


def load_part(
    options: DataOptions, part: Part = "train", data_dir: str | os.PathLike[str] | None = None
) -> Dataset:
    """Images and labels of one part under ``options``.

    ``train``/``val``/``holdout`` come from the training file only (``val`` and ``holdout`` need
    the 80/10/10 scheme); ``test`` is the official test split, filtered to the same classes,
    and is never affected by ``fraction``.
    """
    options.validate()
    file_split: Literal["train", "test"] = "test" if part == "test" else "train"
    images, labels, key, folder = _load_raw_keyed(file_split, data_dir)
    idx = torch.arange(images.shape[0])
    if options.classes is not None:
        keep = torch.isin(labels, torch.tensor(options.classes))
        idx = idx[keep]
    if part != "test":
        if options.split == "80/10/10":
            idx = idx[_split_indices(len(idx), options.split_seed)[part]]
        elif part != "train":
            raise ValueError(f"part {part!r} needs split='80/10/10', this variant uses 'official'")
        if part == "train" and options.fraction < 1.0:
            g = torch.Generator().manual_seed(options.fraction_seed)
            n_keep = max(1, round(options.fraction * len(idx)))
            idx = idx[torch.randperm(len(idx), generator=g)[:n_keep]].sort().values
    full = _resize(images, options.resolution, key)
    return Dataset(
        images=full[idx].unsqueeze(1),
        labels=labels[idx],
        part=part,
        source=str(folder),
    )


def to_model_range(
    batch: torch.Tensor, value_range: tuple[float, float] = (-1.0, 1.0)
) -> torch.Tensor:
    """Map uint8 pixels 0..255 linearly onto ``value_range`` as float32 (x-127.5)/127.5 default."""
    lo, hi = value_range
    return batch.to(torch.float32).mul_((hi - lo) / 255.0).add_(lo)


class EpochSampler:
    """Deterministic, stateless batching: batch ``i`` is a pure function of (seed, i).

    Each epoch is a fresh permutation drawn from ``seed`` and the epoch number; incomplete
    last batches are dropped. Being stateless, it resumes exactly from a step count alone.
    """

    def __init__(
        self, n: int, batch_size: int, seed: int, device: str | torch.device = "cpu"
    ) -> None:
        if batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        if n < batch_size:
            raise ValueError(f"dataset has {n} images, fewer than one batch of {batch_size}")
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.device = torch.device(device)
        self.batches_per_epoch = n // batch_size
        self._epoch = -1
        self._perm = torch.empty(0, dtype=torch.long)

    def indices(self, index: int) -> torch.Tensor:
        """Indices of global batch number ``index`` (0-based, over all epochs), on ``device``.

        The permutation is drawn on the CPU (the same order on every device) and moved to the
        device once per epoch: a per-batch copy from pageable host memory would stall the
        host on every step of a GPU run.
        """
        epoch, pos = divmod(index, self.batches_per_epoch)
        if epoch != self._epoch:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._perm, self._epoch = torch.randperm(self.n, generator=g).to(self.device), epoch
        return self._perm[pos * self.batch_size : (pos + 1) * self.batch_size]
