"""One home for what every layer shares: atomic file writes, digests, version stamps, the
no-download switch and the class names.

It lives in ``metrics`` because that is the lowest layer that bench, metrics and reports may
all import (bench -> metrics -> models; reports -> metrics), and it imports nothing heavy.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import tempfile
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

CLASS_NAMES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
NO_DOWNLOAD_ENV = "FMGAN_NO_DOWNLOAD"


def downloads_disabled() -> bool:
    """Whether ``FMGAN_NO_DOWNLOAD`` forbids network downloads (data, weights): set to
    anything but empty, ``0``, ``false``, ``no`` or ``off``."""
    value = os.environ.get(NO_DOWNLOAD_ENV, "").strip().lower()
    return value not in ("", "0", "false", "no", "off")


def no_download_reason() -> str:
    """How the switch is set, for messages: ``FMGAN_NO_DOWNLOAD=<value>``."""
    return f"{NO_DOWNLOAD_ENV}={os.environ.get(NO_DOWNLOAD_ENV, '')}"


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is fsynced and renamed onto
    ``path`` (``os.replace`` is atomic), so a crash leaves the old file or the new one,
    never a torn mix. The temporary file is removed on any failure, and an OSError (a full
    or read-only disk) names ``path``, the file that could not be written."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)  # an error names the folder
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, str(target)) from exc
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; give normal permissions
        os.replace(tmp_path, target)
    except OSError as exc:
        if exc.filename not in (None, str(tmp_path)):
            raise
        raise OSError(exc.errno, exc.strerror, str(target)) from exc
    finally:
        tmp_path.unlink(missing_ok=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomic(data: bytes, path: str | os.PathLike[str]) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def save_atomic(obj: Any, path: str | os.PathLike[str]) -> None:
    """``torch.save`` ``obj`` to ``path`` atomically, through a buffer: saving to a path
    embeds the file's name in the archive, so the bytes would depend on where it was
    written."""
    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    write_atomic(buf.getvalue(), path)


def file_digest(path: str | os.PathLike[str], algorithm: str = "sha256") -> str:
    """Hex digest of a file's bytes, read in 1 MiB blocks."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def package_versions(packages: tuple[str, ...]) -> dict[str, str]:
    """Installed version of each package ("not installed" when absent)."""
    out = {}
    for pkg in packages:
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out
