"""Errors raised by pacup's models and pipeline.

File-format problems are :class:`pacup.io.PacupIOError` (separate hierarchy, raised by
:mod:`pacup.io`); everything here derives from :class:`PacupError`.
"""

from __future__ import annotations

__all__ = ["PacupError", "InputError", "ModelNotAvailableError", "ModelFileError"]


class PacupError(Exception):
    """Base class of pacup's model and pipeline errors."""


class InputError(PacupError, ValueError):
    """A bad input: size or factor mismatch, guide smaller than the input, unsupported
    factor, wrong array shape or dtype, unavailable device. The message names the problem
    and the sizes involved."""


class ModelNotAvailableError(PacupError):
    """A model name that has no weight file installed (no trained weights for it) or
    that the registry does not know."""


class ModelFileError(PacupError):
    """A weight file that is missing, unreadable, fails its checksum or does not hold a
    pacup model. The message names the file."""
