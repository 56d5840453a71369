"""File-level helpers shared by the format modules: reading bytes, extension dispatch and
atomic writes. Everything here turns OS errors into :class:`ReadError`/:class:`WriteError`."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from typing import BinaryIO

import numpy as np

from .errors import PacupIOError, ReadError, WriteError

PathLike = str | os.PathLike


def extension(path: PathLike) -> str:
    """Lower-cased extension of ``path`` including the dot (``''`` if there is none)."""
    return os.path.splitext(os.fspath(path))[1].lower()


def require_extension(path: PathLike, supported: tuple[str, ...], what: str, error: type[PacupIOError]) -> str:
    """Return the extension of ``path`` or raise ``error`` listing the ``supported`` ones."""
    ext = extension(path)
    if ext not in supported:
        shown = f"'{ext}'" if ext else "no extension"
        raise error(path, f"unknown {what} file extension ({shown}); supported: {', '.join(supported)}")
    return ext


def read_bytes(path: PathLike) -> bytes:
    """Read a whole file, mapping the usual OS failures to one-line :class:`ReadError` messages.

    The formats we read are single images, so reading them whole is cheap and lets the
    decoders validate sizes against the real file length before interpreting any data.
    """
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except FileNotFoundError:
        raise ReadError(path, "file not found") from None
    except IsADirectoryError:
        raise ReadError(path, "is a directory, not a file") from None
    except PermissionError:
        raise ReadError(path, "permission denied") from None
    except OSError as exc:
        raise ReadError(path, f"cannot read file: {exc.strerror or exc}") from None


def _open_temp(path: str) -> tuple[str, BinaryIO]:
    """Create a new, exclusive temporary file next to ``path`` with the same extension.

    The temp file keeps the extension so that anything sniffing the name sees the right
    format, and it is created with mode 0o666 filtered by the umask (unlike
    ``tempfile.mkstemp``'s 0o600), so the final file gets the permissions a plain
    ``open()`` would have given it.
    """
    directory, name = os.path.split(path)
    stem, ext = os.path.splitext(name)
    for _ in range(100):
        tmp = os.path.join(directory, f".{stem}.tmp-{secrets.token_hex(4)}{ext}")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
        except FileExistsError:
            continue
        return tmp, os.fdopen(fd, "wb")
    raise FileExistsError(f"could not create a unique temporary file in {directory or '.'}")


def atomic_write(path: PathLike, write: Callable[[BinaryIO], None]) -> None:
    """Write a file atomically: ``write(fh)`` fills a temporary file that then replaces ``path``.

    Readers of ``path`` therefore see either the old file or the complete new one, never a
    partial file. On any failure (including KeyboardInterrupt) the temporary file is removed
    and nothing is left at ``path`` that was not there before.

    Args:
        path: Destination file. Its directory must already exist (we do not create it, so a
            typo in an output path is reported instead of silently creating directories).
        write: Callback writing the complete file contents to the binary file object.

    Raises:
        WriteError: The directory is missing or unwritable, ``path`` is a directory, or
            ``write`` failed. A :class:`WriteError` raised by ``write`` is passed through.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise WriteError(path, "is a directory, not a file")
    if not os.path.isdir(directory):
        what = "is not a directory" if os.path.exists(directory) else "does not exist"
        raise WriteError(path, f"output directory {what}: {directory}")
    try:
        tmp, fh = _open_temp(path)
    except PermissionError:
        raise WriteError(path, f"output directory is not writable: {directory}") from None
    except OSError as exc:
        raise WriteError(path, f"cannot create file in {directory}: {exc.strerror or exc}") from None
    try:
        with fh:
            write(fh)
            fh.flush()
            # fsync before the rename: otherwise a crash can leave a renamed but empty file.
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, PacupIOError) or not isinstance(exc, Exception):
            raise
        detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise WriteError(path, f"cannot write file: {detail}") from exc


def as_valid_mask(valid, shape: tuple[int, int], path: PathLike) -> np.ndarray | None:
    """Check a user-supplied validity mask for a writer; ``None`` passes through.

    Raises:
        WriteError: The mask does not have shape ``shape`` (HxW).
    """
    if valid is None:
        return None
    mask = np.asarray(valid)
    if mask.shape != tuple(shape):
        raise WriteError(path, f"valid mask has shape {mask.shape}, expected {tuple(shape)}")
    return mask.astype(bool)


def check_scale(depth_scale, path: PathLike, error: type[PacupIOError]) -> float:
    """Validate ``depth_scale`` (``None`` means 1) and return it as a float."""
    if depth_scale is None:
        return 1.0
    try:
        scale = float(depth_scale)
    except (TypeError, ValueError):
        raise error(path, f"depth_scale must be a number, got {depth_scale!r}") from None
    if not np.isfinite(scale) or scale <= 0:
        raise error(path, f"depth_scale must be a positive finite number, got {depth_scale!r}")
    return scale
