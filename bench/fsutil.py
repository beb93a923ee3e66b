"""Atomic file writes: results, caches and checkpoints are never seen half-written.

Every write goes to a temporary file in the destination folder, is flushed and fsynced, then
renamed over the target (``os.replace`` is atomic on POSIX and Windows). A crash therefore
leaves either the old file or the new one, never a torn mix.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from bench.errors import BenchError
from metrics.common import atomic_path


def atomic_write(path: str | os.PathLike[str], writer: Callable[[IO[bytes]], Any]) -> None:
    """Call ``writer(fh)`` on a binary temp file and move it onto ``path`` atomically."""
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        writer(fh)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write(path, lambda fh: fh.write(text.encode("utf-8")))


def atomic_write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Write ``obj`` as indented, key-sorted JSON to ``path`` atomically."""
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def append_line(path: str | os.PathLike[str], line: str) -> None:
    """Append one line with a single ``write`` on an O_APPEND descriptor, then fsync, under
    an exclusive POSIX record lock on the file.

    The lock serialises concurrent writers (parallel jobs, cluster jobs on a shared file
    system, where O_APPEND alone is not atomic across hosts), so lines never interleave. A
    torn tail (an append cut short by a kill, a full disk or a truncated copy) is first moved
    to ``<file>.torn`` and cut off, so the new line never fuses with it. A write that fails
    (a full disk) is cut back off the same way: the file stays a whole number of lines.
    """
    data = (line.rstrip("\n") + "\n").encode("utf-8")
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX)  # blocks while another writer appends
        _cut_torn_tail(fd, Path(path))
        size = os.fstat(fd).st_size
        try:
            if os.write(fd, data) != len(data):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
            os.fsync(fd)
        except OSError as exc:
            os.ftruncate(fd, size)  # no torn line of our own
            raise OSError(exc.errno, exc.strerror, str(path)) from exc
    finally:
        os.close(fd)  # closing drops the lock


def _cut_torn_tail(fd: int, path: Path) -> None:
    """Move an unterminated last line of the file open as ``fd`` to ``<path>.torn``."""
    size = os.fstat(fd).st_size
    if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
        return
    start, end = 0, size
    while end > 0:  # scan back, 64 KiB at a time, for the last newline
        lo = max(0, end - (1 << 16))
        nl = os.pread(fd, end - lo, lo).rfind(b"\n")
        if nl >= 0:
            start = lo + nl + 1
            break
        end = lo
    fragment = os.pread(fd, size - start, start)
    with open(f"{path}.torn", "ab") as keep:
        keep.write(fragment + b"\n")
    os.ftruncate(fd, start)


def read_toml(path: Path, error: type[BenchError]) -> dict[str, Any]:
    """A TOML file as a dict; an unreadable or invalid file raises ``error`` naming it."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"{path}: cannot read ({exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{path}: not valid TOML ({exc})") from None


def read_json(path: Path, error: type[BenchError]) -> Any:
    """A JSON file; invalid JSON raises ``error`` naming the file."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise error(f"{path}: not valid JSON ({exc.msg})") from None
