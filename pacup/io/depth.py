"""Depth map readers and writers.

Units: by default values are returned exactly as stored (e.g. millimetres for a 16-bit PNG
in mm), so reading and writing back reproduces the file. ``depth_scale`` describes how the
*file* stores depth, for every format alike::

    depth = stored / depth_scale          (on read)
    stored = depth * depth_scale          (on write)

Typical values: 1000 for millimetre PNGs (-> metres), 5000 for TUM RGB-D, 256 for KITTI.

Validity: a pixel is valid when its value is finite and > 0. That covers the PNG
convention (0 = no measurement) and the usual float conventions (NaN, inf, 0 or negative
sentinels such as -1). Invalid pixels are returned as 0 in ``depth`` and written as 0.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image

from . import _pfm, _png
from ._decode import load_npy, open_pillow
from ._files import PathLike, as_valid_mask, atomic_write, check_scale, read_bytes, require_extension
from .errors import ReadError, WriteError

SUPPORTED_DEPTH = (".png", ".npy", ".pfm", ".tif", ".tiff")

_PNG_MAX = 65535
# Pillow modes holding one integer/float sample per pixel.
_SINGLE_CHANNEL_MODES = ("L", "I", "I;16", "I;16L", "I;16B", "I;16N", "F")


def _single_channel_pillow(data: bytes, path: PathLike, what: str) -> np.ndarray:
    image = open_pillow(data, path, what)
    if image.mode == "P":
        raise ReadError(path, f"{what} uses a colour palette; a depth map must be a single-channel grey image")
    if image.mode not in _SINGLE_CHANNEL_MODES:
        bands = len(image.getbands())
        raise ReadError(
            path, f"{what} has {bands} channels (mode {image.mode}); a depth map must be a single-channel image"
        )
    return np.asarray(image)


def _decode_stored(data: bytes, path: PathLike, ext: str) -> np.ndarray:
    """Decode the stored values (before scaling) as a 2-D numeric array."""
    if ext == ".png":
        return _single_channel_pillow(data, path, "PNG")
    if ext in (".tif", ".tiff"):
        return _single_channel_pillow(data, path, "TIFF")
    if ext == ".pfm":
        try:
            arr = _pfm.decode(data)
        except ValueError as exc:
            raise ReadError(path, str(exc)) from None
        if arr.ndim != 2:
            raise ReadError(path, "3-channel PFM ('PF'); a depth map must be a 1-channel PFM ('Pf')")
        return arr
    arr = load_npy(data, path)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim != 2:
        raise ReadError(path, f"depth array has shape {arr.shape}; expected HxW (or HxWx1)")
    return arr


def read_depth(path: PathLike, depth_scale: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Read a depth map.

    Formats by extension: 8/16-bit greyscale PNG, ``.npy`` (any real dtype), ``.pfm``
    (1 channel), single-channel TIFF (float32 or integer).

    Args:
        path: File to read.
        depth_scale: Stored units per output unit; stored values are divided by it.
            ``None`` returns values as stored (e.g. PNG integers as float32).

    Returns:
        (depth, valid): float32 (H, W) depth with invalid pixels set to 0, and a bool (H, W)
        mask that is True where the stored value is finite and > 0.

    Raises:
        ReadError: Missing file, unknown extension, corrupt/truncated file, or not a
            single-channel image.
    """
    ext = require_extension(path, SUPPORTED_DEPTH, "depth", ReadError)
    scale = check_scale(depth_scale, path, ReadError)
    stored = _decode_stored(read_bytes(path), path, ext)
    # float64 for the division so that write(read(x)) rounds back to exactly x.
    depth = stored.astype(np.float64)
    with np.errstate(invalid="ignore"):
        valid = np.isfinite(depth) & (depth > 0)
    depth = np.where(valid, depth / scale, 0.0).astype(np.float32)
    return depth, valid


def _as_depth_array(depth, path: PathLike) -> np.ndarray:
    arr = np.asarray(depth)
    if arr.dtype.kind not in "fiu":
        raise WriteError(path, f"depth must be a real-valued array, got dtype {arr.dtype}")
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim != 2 or 0 in arr.shape:
        raise WriteError(path, f"depth has shape {arr.shape}; expected a non-empty HxW array")
    return arr.astype(np.float64)


def _encode_png16(stored: np.ndarray, valid: np.ndarray, path: PathLike, scale: float) -> bytes:
    """16-bit PNG: round, clip valid pixels to [1, 65535] (0 is reserved for invalid)."""
    rounded = np.rint(stored)
    clipped = valid & ((rounded < 1) | (rounded > _PNG_MAX))
    if clipped.any():
        # Usually a forgotten or wrong depth_scale (e.g. metres written without scaling
        # all round to 0..100): say so rather than silently writing a useless file.
        warnings.warn(
            f"{path}: {int(clipped.sum())} valid depth values fall outside the 16-bit PNG range "
            f"[1, {_PNG_MAX}] after scaling by depth_scale={scale:g} and were clipped",
            stacklevel=3,
        )
    pixels = np.where(valid, np.clip(rounded, 1, _PNG_MAX), 0).astype(np.uint16)
    return _png.encode(pixels)


def write_depth(path: PathLike, depth, valid=None, depth_scale: float | None = None) -> None:
    """Write a depth map atomically; the format is chosen by the extension.

    PNG output is always 16-bit greyscale: ``depth * depth_scale`` is rounded, valid
    pixels are clipped to [1, 65535] (with a warning if any needed clipping) and invalid
    pixels are written as 0. Float formats (``.npy``, ``.pfm``, ``.tif``/``.tiff``) store
    float32 ``depth * depth_scale`` with invalid pixels as 0.

    Valid pixels whose value is not finite are written as invalid. In float formats a valid
    pixel with depth <= 0 is written as is and therefore reads back as invalid.

    Args:
        path: Destination; its directory must exist.
        depth: (H, W) or (H, W, 1) real array.
        valid: Optional bool (H, W) mask; default: finite and > 0.
        depth_scale: Stored units per depth unit (see module docstring); ``None`` = 1.

    Raises:
        WriteError: Unknown extension, bad array shape/dtype, or the file cannot be written.
    """
    ext = require_extension(path, SUPPORTED_DEPTH, "depth", WriteError)
    scale = check_scale(depth_scale, path, WriteError)
    arr = _as_depth_array(depth, path)
    finite = np.isfinite(arr)
    mask = as_valid_mask(valid, arr.shape, path)
    with np.errstate(invalid="ignore"):
        mask = (finite & (arr > 0)) if mask is None else (mask & finite)
    stored = np.where(mask, arr * scale, 0.0)

    if ext == ".png":
        payload = _encode_png16(stored, mask, path, scale)
    elif ext == ".pfm":
        payload = _pfm.encode(stored.astype(np.float32))
    elif ext == ".npy":
        buf = io.BytesIO()
        np.save(buf, stored.astype(np.float32))
        payload = buf.getvalue()
    else:  # TIFF: Pillow writes single-channel float32 ("F") TIFFs that it and tifffile read back.
        buf = io.BytesIO()
        Image.fromarray(stored.astype(np.float32)).save(buf, format="TIFF")
        payload = buf.getvalue()
    atomic_write(path, lambda fh: fh.write(payload))
