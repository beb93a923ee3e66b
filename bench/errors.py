"""User-facing errors: the CLI turns each into one message and a non-zero exit, no traceback."""

from __future__ import annotations

import errno


class BenchError(Exception):
    """A problem the user can fix (bad input, missing data, a locked run folder).

    Attributes:
        exit_code: process exit status the CLI uses; 2 marks bad input, as click does.
    """

    exit_code: int = 2


class DataNotFoundError(BenchError):
    """Fashion-MNIST could not be found or fetched by any of the supported routes."""


class DataFormatError(BenchError):
    """A Fashion-MNIST file exists but is truncated, corrupted or not what its name says."""


class RunFolderError(BenchError):
    """A run folder cannot be used: locked by another process or made with other settings."""


# What a full, read-only or forbidden destination raises: the user's to fix, not a crash.
DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM})


class DiskError(BenchError):
    """A write the file system refused (full disk, read-only folder, no permission)."""


# What a path of the wrong kind raises (a file where a folder must go, or the reverse).
PATH_ERRNOS = frozenset({errno.EEXIST, errno.ENOTDIR, errno.EISDIR})


def disk_error(exc: BaseException) -> DiskError | None:
    """The one-line user error for an OSError of :data:`DISK_ERRNOS` or :data:`PATH_ERRNOS`,
    else None."""
    if not isinstance(exc, OSError) or exc.errno not in DISK_ERRNOS | PATH_ERRNOS:
        return None
    what = exc.filename or "a file"
    if exc.errno in PATH_ERRNOS:
        return DiskError(
            f"cannot write {what}: {exc.strerror or exc} (a file stands where a folder must go, "
            "or the reverse). Everything written before is intact; move it away, then run the "
            "same command again to continue"
        )
    return DiskError(
        f"cannot write {what}: {exc.strerror or exc}. Everything written before is intact "
        "(writes are atomic); free space or make the folder writable, then run the same "
        "command again to continue"
    )
