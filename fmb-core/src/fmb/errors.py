"""Errors users see as one line (exit status 2): bad usage or bad input."""

from __future__ import annotations


class FMBError(Exception):
    """Base class of errors reported as a single line without a traceback."""


class UsageError(FMBError):
    """A bad option, parameter, name or configuration file."""


class DetectorError(FMBError):
    """A detector that cannot run on the given input or parameters."""


class ModelError(FMBError):
    """A model that cannot load or embed."""


class DataError(FMBError, ValueError):
    """Bad input data. The message names the file, row and field where known."""


class OutputError(FMBError, OSError):
    """A file FMB cannot write (disk full, no permission). The message names the path."""
