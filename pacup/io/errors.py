"""Exceptions raised by :mod:`pacup.io`.

Every problem with a file (missing, unreadable, corrupt, wrong format or shape) is reported
as a :class:`ReadError` or :class:`WriteError` whose message is a single line naming the
file and the problem, so that the command-line front end can print it as-is without a
traceback.
"""

from __future__ import annotations

import os


class PacupIOError(Exception):
    """Base class of all file errors raised by :mod:`pacup.io`.

    Attributes:
        path: The file the error is about, as a string.
        problem: A short description of what is wrong, without the path.
    """

    def __init__(self, path: str | os.PathLike, problem: str) -> None:
        self.path = os.fspath(path)
        # Messages from lower layers (zlib, Pillow, numpy) sometimes span several lines;
        # collapse them so the CLI can always print exactly one line per error.
        self.problem = " ".join(str(problem).split())
        super().__init__(f"{self.path}: {self.problem}")


class ReadError(PacupIOError):
    """A file could not be read: missing, unsupported, corrupt, truncated or of the wrong shape."""


class WriteError(PacupIOError):
    """A file could not be written: bad destination, unsupported extension or unsuitable data."""
