"""Optical flow readers and writers.

Flow is (H, W, 2) float32 with channel 0 = u (horizontal, +x to the right) and
channel 1 = v (vertical, +y downwards), in pixels. Invalid pixels are returned as 0 with
``valid`` False. How each format marks invalid pixels (read rule; what we write):

- ``.flo`` (Middlebury): abs(u) or abs(v) > 1e9, or not finite; written as 1e10.
- ``.png`` (KITTI 16-bit RGB): blue channel 0; written as (0, 0, 0).
- ``.pfm`` (3 channels, third ignored on read, 0 on write): u or v not finite; written as NaN.
- ``.npy`` (HxWx2): u or v not finite; written as NaN.
"""

from __future__ import annotations

import io
import struct
import warnings

import numpy as np

from . import _pfm, _png
from ._decode import load_npy
from ._files import PathLike, as_valid_mask, atomic_write, read_bytes, require_extension
from .errors import ReadError, WriteError

SUPPORTED_FLOW = (".flo", ".png", ".pfm", ".npy")

# Middlebury .flo: the tag is the bytes "PIEH", which read as a little-endian float32 is 202021.25.
FLO_TAG = 202021.25
FLO_UNKNOWN_THRESHOLD = 1e9
FLO_UNKNOWN_VALUE = 1e10
# KITTI 16-bit PNG: stored = u * 64 + 2**15, so flow spans [-512, 511.984] in steps of 1/64.
KITTI_SCALE = 64.0
KITTI_OFFSET = 2.0**15


def _decode_flo(data: bytes, path: PathLike) -> tuple[np.ndarray, np.ndarray]:
    if len(data) < 12:
        raise ReadError(path, f"truncated .flo file ({len(data)} bytes, the header alone needs 12)")
    # The format is little-endian by definition; a byte-swapped tag means a file written
    # natively on a big-endian machine, which we can still read unambiguously.
    for order in "<>":
        if struct.unpack(order + "f", data[:4])[0] == FLO_TAG:
            break
    else:
        raise ReadError(
            path, f"wrong .flo tag {data[:4]!r} (expected b'PIEH' = float 202021.25); not a Middlebury .flo file"
        )
    width, height = struct.unpack(order + "ii", data[4:12])
    if width <= 0 or height <= 0:
        raise ReadError(path, f"corrupt .flo header (size {width}x{height})")
    expected = 12 + width * height * 8
    if len(data) < expected:
        raise ReadError(
            path,
            f"truncated .flo file: header says {width}x{height}, which needs {expected} bytes, file has {len(data)}",
        )
    if len(data) > expected:
        extra = len(data) - expected
        raise ReadError(path, f"corrupt .flo file: {extra} unexpected bytes after the {width}x{height} flow data")
    flow = np.frombuffer(data, order + "f4", offset=12).reshape(height, width, 2).astype(np.float32)
    with np.errstate(invalid="ignore"):
        valid = np.all(np.isfinite(flow) & (np.abs(flow) <= FLO_UNKNOWN_THRESHOLD), axis=2)
    return flow, valid


def _decode_kitti(data: bytes, path: PathLike) -> tuple[np.ndarray, np.ndarray]:
    try:
        pixels, info = _png.decode(data)
    except ValueError as exc:
        raise ReadError(path, str(exc)) from None
    if info.bit_depth != 16 or pixels.shape[2] not in (3, 4):
        raise ReadError(path, f"KITTI flow PNG must be 16-bit RGB, got {info.description}")
    flow = (pixels[:, :, :2].astype(np.float32) - KITTI_OFFSET) / KITTI_SCALE
    return flow, pixels[:, :, 2] > 0


def _decode_float(arr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    flow = arr.astype(np.float32)
    return flow, np.all(np.isfinite(flow), axis=2)


def read_flow(path: PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read an optical flow field.

    Formats by extension: Middlebury ``.flo``, KITTI 16-bit ``.png``, 3-channel ``.pfm``
    (third channel ignored), ``.npy`` holding an HxWx2 array.

    Args:
        path: File to read.

    Returns:
        (flow, valid): float32 (H, W, 2) flow (u, v) in pixels with invalid pixels set to 0,
        and a bool (H, W) validity mask (see the module docstring for each format's rule).

    Raises:
        ReadError: Missing file, unknown extension, wrong tag, corrupt/truncated file, or
            wrong shape/channel count.
    """
    ext = require_extension(path, SUPPORTED_FLOW, "flow", ReadError)
    data = read_bytes(path)
    if ext == ".flo":
        flow, valid = _decode_flo(data, path)
    elif ext == ".png":
        flow, valid = _decode_kitti(data, path)
    elif ext == ".pfm":
        try:
            arr = _pfm.decode(data)
        except ValueError as exc:
            raise ReadError(path, str(exc)) from None
        if arr.ndim != 3:
            raise ReadError(path, "1-channel PFM ('Pf'); flow needs a 3-channel PFM ('PF')")
        flow, valid = _decode_float(arr[:, :, :2])
    else:
        arr = load_npy(data, path)
        if arr.ndim != 3 or arr.shape[2] != 2:
            raise ReadError(path, f"flow array has shape {arr.shape}; expected HxWx2")
        flow, valid = _decode_float(arr)
    flow[~valid] = 0
    return flow, valid


def _encode_kitti(flow: np.ndarray, valid: np.ndarray, path: PathLike) -> bytes:
    stored = np.rint(flow.astype(np.float64) * KITTI_SCALE + KITTI_OFFSET)
    clipped = valid[:, :, None] & ((stored < 0) | (stored > 65535))
    if clipped.any():
        warnings.warn(
            f"{path}: {int(clipped.any(axis=2).sum())} flow vectors exceed the KITTI PNG range "
            "[-512, 511.98] px and were clipped",
            stacklevel=3,
        )
    pixels = np.zeros(flow.shape[:2] + (3,), np.uint16)
    pixels[:, :, :2] = np.where(valid[:, :, None], np.clip(stored, 0, 65535), 0)
    pixels[:, :, 2] = valid
    return _png.encode(pixels)


def write_flow(path: PathLike, flow, valid=None) -> None:
    """Write an optical flow field atomically; the format is chosen by the extension.

    ``.flo`` writes invalid pixels as 1e10; KITTI ``.png`` rounds to 1/64 px, clips to
    [-512, 511.98] (with a warning) and sets blue = validity; ``.pfm`` writes u, v and a
    zero third channel; ``.pfm`` and ``.npy`` write invalid pixels as NaN.

    Args:
        path: Destination; its directory must exist.
        flow: (H, W, 2) real array (u, v) in pixels.
        valid: Optional bool (H, W) mask; default: both components finite. Pixels with
            non-finite flow are always written as invalid.

    Raises:
        WriteError: Unknown extension, bad array shape/dtype, or the file cannot be written.
    """
    ext = require_extension(path, SUPPORTED_FLOW, "flow", WriteError)
    arr = np.asarray(flow)
    if arr.dtype.kind not in "fiu":
        raise WriteError(path, f"flow must be a real-valued array, got dtype {arr.dtype}")
    if arr.ndim != 3 or arr.shape[2] != 2 or 0 in arr.shape:
        raise WriteError(path, f"flow has shape {arr.shape}; expected a non-empty HxWx2 array")
    arr = arr.astype(np.float32)
    finite = np.all(np.isfinite(arr), axis=2)
    mask = as_valid_mask(valid, arr.shape[:2], path)
    mask = finite if mask is None else (mask & finite)

    if ext == ".flo":
        out = np.where(mask[:, :, None], arr, np.float32(FLO_UNKNOWN_VALUE))
        height, width = arr.shape[:2]
        payload = struct.pack("<fii", FLO_TAG, width, height) + out.astype("<f4").tobytes()
    elif ext == ".png":
        payload = _encode_kitti(arr, mask, path)
    else:
        out = np.where(mask[:, :, None], arr, np.float32(np.nan))
        if ext == ".pfm":
            payload = _pfm.encode(np.concatenate([out, np.zeros_like(out[:, :, :1])], axis=2))
        else:
            buf = io.BytesIO()
            np.save(buf, out)
            payload = buf.getvalue()
    atomic_write(path, lambda fh: fh.write(payload))
