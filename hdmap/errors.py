"""The exceptions hdmap raises for bad input.

Every error a user can cause derives from :class:`HdmapError`. A message names
the file or argument, says what is wrong with it (and the value found, where
that helps) and what to do about it. The command line prints the message on one
line and exits with status 2; it never shows a traceback for these.

Some classes also derive from the built-in exception a caller would expect
(``FileNotFoundError``, ``ValueError``), so ``except ValueError`` keeps working.
"""

from __future__ import annotations

__all__ = [
    "HdmapError",
    "InputFileNotFoundError",
    "FileFormatError",
    "CorruptFileError",
    "EmptyInputError",
    "CRSError",
    "InvalidCoordinatesError",
    "TrajectoryError",
    "TrajectoryRangeError",
    "ParameterError",
    "ConfigError",
    "MissingDependencyError",
]


class HdmapError(Exception):
    """Base class of every error hdmap raises on purpose."""


class InputFileNotFoundError(HdmapError, FileNotFoundError):
    """A file named by the user does not exist."""

    def __init__(self, path, what: str = "file"):
        self.path = path
        super().__init__(f"{path}: no such {what}; check the path (working directory is relative paths' base)")

    def __str__(self) -> str:  # FileNotFoundError would format errno/filename instead
        return self.args[0]


class FileFormatError(HdmapError, ValueError):
    """A file is not in the format it should be (e.g. not a LAS file)."""


class CorruptFileError(FileFormatError):
    """A file starts in the right format but is truncated or damaged."""


class EmptyInputError(HdmapError, ValueError):
    """An input holds no points (or no trajectory samples)."""


class CRSError(HdmapError, ValueError):
    """A coordinate reference system is missing, unknown or cannot be used."""


class InvalidCoordinatesError(HdmapError, ValueError):
    """Coordinates are NaN or infinite, or a header's scale/offset is unusable."""


class TrajectoryError(HdmapError, ValueError):
    """A trajectory file or array cannot be used (format, order, gaps)."""


class TrajectoryRangeError(TrajectoryError):
    """Point times lie outside the time span of the trajectory."""


class ParameterError(HdmapError, ValueError):
    """A stage parameter or option has an unknown name or a value out of range."""


class ConfigError(HdmapError, ValueError):
    """A campaign or road-description file is invalid."""


class MissingDependencyError(HdmapError, ImportError):
    """An optional or system dependency is not installed."""
