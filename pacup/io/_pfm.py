"""Portable Float Map (PFM) codec.

Layout: ``Pf`` (1 channel) or ``PF`` (3 channels), whitespace, ``width height``,
whitespace, a scale factor whose *sign* gives the byte order (negative = little-endian,
positive = big-endian), exactly one whitespace byte, then float32 samples with the rows
stored bottom-to-top. The magnitude of the scale is not used by any dataset we know of and
is ignored on read (written as 1.0).
"""

from __future__ import annotations

import re

import numpy as np

_HEADER = re.compile(rb"\A(P[Ff])\s+(\d+)\s+(\d+)\s+(\S+)\s")


def decode(data: bytes) -> np.ndarray:
    """Decode PFM bytes.

    Returns:
        float32 array (H, W) for ``Pf`` or (H, W, 3) for ``PF``, top row first.

    Raises:
        ValueError: Bad header, invalid scale, or data size not matching the header.
    """
    match = _HEADER.match(data)
    if match is None:
        raise ValueError("not a PFM file (header must be 'PF' or 'Pf', width, height, scale)")
    magic, width, height, scale_text = match.groups()
    channels = 3 if magic == b"PF" else 1
    width, height = int(width), int(height)
    try:
        scale = float(scale_text)
    except ValueError:
        raise ValueError(f"corrupt PFM header (scale {scale_text.decode('latin-1')!r} is not a number)") from None
    if width == 0 or height == 0:
        raise ValueError("corrupt PFM header (zero width or height)")
    if not np.isfinite(scale) or scale == 0:
        raise ValueError(f"corrupt PFM header (scale must be non-zero, got {scale_text.decode('latin-1')})")
    body = data[match.end() :]
    expected = width * height * channels * 4
    # Files written on Windows sometimes end the header with "\r\n"; the regex consumed the
    # "\r", so a leftover "\n" plus exactly the expected payload is unambiguous.
    if len(body) == expected + 1 and body[:1] == b"\n":
        body = body[1:]
    if len(body) < expected:
        raise ValueError(
            f"truncated PFM ({width}x{height}x{channels} needs {expected} data bytes, file has {len(body)})"
        )
    if len(body) > expected:
        raise ValueError(f"PFM has {len(body) - expected} unexpected bytes after the {width}x{height}x{channels} data")
    dtype = "<f4" if scale < 0 else ">f4"
    arr = np.frombuffer(body, dtype).reshape(height, width, channels)
    arr = np.flipud(arr).astype(np.float32)  # bottom-up rows -> top-down; native byte order
    return arr[:, :, 0] if channels == 1 else arr


def encode(arr: np.ndarray, little_endian: bool = True) -> bytes:
    """Encode a float array (H, W) or (H, W, 3) as PFM bytes.

    Args:
        arr: Image with the top row first; converted to float32.
        little_endian: Byte order of the samples (little-endian is what nearly every tool
            writes; big-endian exists for completeness and tests).
    """
    if arr.ndim == 2:
        magic, arr = b"Pf", arr[:, :, None]
    elif arr.ndim == 3 and arr.shape[2] == 3:
        magic = b"PF"
    else:
        raise ValueError(f"PFM holds HxW or HxWx3 arrays, got shape {arr.shape}")
    height, width = arr.shape[:2]
    header = b"%s\n%d %d\n%s\n" % (magic, width, height, b"-1.0" if little_endian else b"1.0")
    return header + np.flipud(arr).astype("<f4" if little_endian else ">f4").tobytes()
