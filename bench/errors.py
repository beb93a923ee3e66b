"""User-facing errors: the CLI turns each into one message and a non-zero exit, no traceback."""

from __future__ import annotations


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
