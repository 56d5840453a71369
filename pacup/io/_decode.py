"""Decoding helpers shared by the depth, flow and guide readers."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, UnidentifiedImageError

from ._files import PathLike
from .errors import ReadError


def open_pillow(data: bytes, path: PathLike, what: str) -> Image.Image:
    """Fully decode an image with Pillow, turning any failure into a one-line ReadError.

    Pillow reports problems with a variety of exception types (OSError, SyntaxError,
    ValueError, DecompressionBombError, ...), so the catch is deliberately broad.
    """
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
        return image
    except UnidentifiedImageError:
        raise ReadError(path, f"cannot decode {what}: not a supported image (or an unsupported sample type)") from None
    except Exception as exc:  # noqa: BLE001 - see docstring
        raise ReadError(path, f"cannot decode {what}: {exc}") from None


def load_npy(data: bytes, path: PathLike) -> np.ndarray:
    """Load a ``.npy`` payload without allowing pickles and check it holds real numbers."""
    try:
        arr = np.load(io.BytesIO(data), allow_pickle=False)
    except Exception as exc:  # noqa: BLE001 - numpy raises ValueError/EOFError/OSError/...
        raise ReadError(path, f"cannot decode .npy: {exc}") from None
    if not isinstance(arr, np.ndarray) or arr.dtype.kind not in "fiu":
        kind = getattr(arr, "dtype", type(arr).__name__)
        raise ReadError(path, f"expected a numeric (float or integer) array, got {kind}")
    return arr
