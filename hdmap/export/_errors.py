"""Readers' error contract: whatever a malformed file makes the parser trip over becomes a FileFormatError naming it."""

from __future__ import annotations

import functools

from ..errors import FileFormatError, HdmapError


def file_errors(what: str):
    """Decorate ``reader(path, ...)``: a TypeError/ValueError/KeyError/IndexError raised while reading a *what*
    file (a non-numeric attribute, a missing id, a dangling reference) becomes a :class:`FileFormatError` that
    names the file; hdmap's own errors pass through unchanged."""

    def wrap(reader):
        @functools.wraps(reader)
        def read(path, *args, **kwargs):
            try:
                return reader(path, *args, **kwargs)
            except HdmapError:
                raise
            except (TypeError, ValueError, KeyError, IndexError) as exc:
                raise FileFormatError(f"{path}: malformed {what} file ({type(exc).__name__}: {exc}); check it "
                                      "with the format's own tools") from exc

        return read

    return wrap
