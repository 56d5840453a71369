"""A minimal PNG codec for 8/16-bit grey/RGB(A) images, in numpy + zlib.

Why not Pillow: Pillow has no 16-bit RGB mode, so it silently truncates 16-bit RGB PNGs
(the KITTI optical-flow format) to 8 bits on read and cannot write them at all; imageio's
Pillow plugin inherits both limits. This module supports exactly what we need:
non-interlaced PNGs with bit depth 8 or 16 and colour types grey, grey+alpha, RGB and RGBA,
with all five PNG row filters on read. Anything else raises ``ValueError`` with a short
message; callers turn that into a ``ReadError`` naming the file.

Reference: PNG specification (ISO/IEC 15948), sections 5 (chunks), 9 (filtering), 11 (IHDR).
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

SIGNATURE = b"\x89PNG\r\n\x1a\n"
# colour type -> samples per pixel (palette and sub-byte depths are deliberately unsupported)
_CHANNELS = {0: 1, 4: 2, 2: 3, 6: 4}
_COLOR_TYPE = {c: t for t, c in _CHANNELS.items()}
_COLOR_NAMES = {0: "greyscale", 2: "RGB", 3: "palette", 4: "greyscale+alpha", 6: "RGBA"}
# IDAT payloads are split into chunks of this size; any size <= 2**31-1 is legal.
_IDAT_CHUNK = 1 << 20
# Refuse absurd IHDR sizes before inflating anything (~2x Pillow's decompression-bomb limit).
_MAX_PIXELS = 1 << 28


class PngInfo:
    """The IHDR fields we care about."""

    def __init__(self, width: int, height: int, bit_depth: int, color_type: int, interlace: int) -> None:
        self.width = width
        self.height = height
        self.bit_depth = bit_depth
        self.color_type = color_type
        self.interlace = interlace

    @property
    def description(self) -> str:
        """Human-readable summary such as ``16-bit RGB``."""
        return f"{self.bit_depth}-bit {_COLOR_NAMES.get(self.color_type, f'colour type {self.color_type}')}"


def _chunks(data: bytes):
    """Yield ``(type, body)`` for each chunk up to and including IEND, verifying CRCs."""
    if not data.startswith(SIGNATURE):
        raise ValueError("not a PNG file (bad signature)")
    pos = len(SIGNATURE)
    while True:
        if pos + 8 > len(data):
            raise ValueError("truncated PNG (missing IEND chunk)")
        length, ctype = struct.unpack(">I4s", data[pos : pos + 8])
        end = pos + 8 + length
        if end + 4 > len(data):
            raise ValueError(f"truncated PNG (chunk {ctype.decode('latin-1')!r} cut off)")
        body = data[pos + 8 : end]
        (crc,) = struct.unpack(">I", data[end : end + 4])
        if zlib.crc32(ctype + body) != crc:
            raise ValueError(f"corrupt PNG (CRC mismatch in chunk {ctype.decode('latin-1')!r})")
        yield ctype, body
        if ctype == b"IEND":
            return
        pos = end + 4


def _parse_ihdr(ctype: bytes, body: bytes) -> PngInfo:
    """Parse the first chunk, which the spec requires to be IHDR."""
    if ctype != b"IHDR" or len(body) != 13:
        raise ValueError("corrupt PNG (first chunk is not a valid IHDR)")
    width, height, depth, color_type, _comp, _filter, interlace = struct.unpack(">IIBBBBB", body)
    if width == 0 or height == 0:
        raise ValueError("corrupt PNG (zero width or height)")
    if width * height > _MAX_PIXELS:
        raise ValueError(f"PNG too large ({width}x{height} pixels)")
    return PngInfo(width, height, depth, color_type, interlace)


def _paeth(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Paeth predictor (PNG spec 9.4) on int16 arrays of byte values."""
    p = a + b - c
    pa, pb, pc = np.abs(p - a), np.abs(p - b), np.abs(p - c)
    return np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))


def _unfilter(rows: np.ndarray, width: int, bpp: int) -> np.ndarray:
    """Undo PNG row filtering.

    Args:
        rows: uint8 array (H, 1 + width*bpp): a filter-type byte then the filtered bytes.
        width: Pixels per row.
        bpp: Bytes per complete pixel (the filter's "left neighbour" distance).

    Returns:
        uint8 array (H, width, bpp) of reconstructed bytes.

    A pixel's reconstruction depends on its left, upper and upper-left neighbours, so rows
    cannot be decoded independently, and the Average/Paeth filters are non-linear along a
    row. Pixels on one anti-diagonal (x + y = t) are independent of each other, though, so
    we sweep the H + W - 1 anti-diagonals and vectorise within each. To make every step
    use plain slices, the image is stored "skewed": ``skew[t, y]`` holds pixel
    ``(y, t - y)``; then the left neighbour is ``skew[t-1, y]``, the upper one
    ``skew[t-1, y-1]`` and the upper-left one ``skew[t-2, y-1]``.
    """
    height = rows.shape[0]
    ftype = rows[:, 0]
    if ftype.max() > 4:
        raise ValueError(f"corrupt PNG (invalid row filter type {int(ftype.max())})")
    filt = rows[:, 1:].reshape(height, width, bpp)
    if not ftype.any():  # every row unfiltered (type 0): nothing to undo
        return filt.copy()
    steps = height + width - 1
    skew_in = np.zeros((steps, height, bpp), np.int16)
    for y in range(height):
        skew_in[y : y + width, y] = filt[y]
    # Output with one step and one row of zero padding in front: the spec treats bytes
    # outside the image as 0, and positions outside the image are never written.
    out = np.zeros((steps + 1, height + 1, bpp), np.int16)
    is_type = [(ftype == t)[:, None] for t in range(5)]  # per-row filter masks, (H, 1)
    for t in range(steps):
        y0, y1 = max(0, t - width + 1), min(height, t + 1)
        a = out[t, y0 + 1 : y1 + 1]  # left
        b = out[t, y0:y1]  # up
        c = out[t - 1, y0:y1] if t else b  # up-left (t = 0 has only pixel (0, 0): c is 0)
        masks = [m[y0:y1] for m in is_type[1:]]
        pred = np.select(masks, [a, b, (a + b) >> 1, _paeth(a, b, c)], 0)
        out[t + 1, y0 + 1 : y1 + 1] = (skew_in[t, y0:y1] + pred) & 0xFF
    result = np.empty((height, width, bpp), np.uint8)
    for y in range(height):
        result[y] = out[y + 1 : y + 1 + width, y + 1]
    return result


def decode(data: bytes) -> tuple[np.ndarray, PngInfo]:
    """Decode a PNG held in ``data``.

    Returns:
        (pixels, info): pixels is uint8 (bit depth 8) or uint16 (bit depth 16) with shape
        (H, W, C), C = 1 grey, 2 grey+alpha, 3 RGB, 4 RGBA.

    Raises:
        ValueError: Not a PNG, corrupt/truncated data, or an unsupported variant
            (palette, bit depth < 8, interlaced).
    """
    chunks = _chunks(data)
    info = _parse_ihdr(*next(chunks))
    idat = [body for ctype, body in chunks if ctype == b"IDAT"]
    if info.color_type not in _CHANNELS or info.bit_depth not in (8, 16):
        raise ValueError(f"unsupported PNG variant ({info.description}); expected 8- or 16-bit grey/RGB(A)")
    if info.interlace:
        raise ValueError("unsupported PNG variant (interlaced)")
    channels = _CHANNELS[info.color_type]
    bpp = channels * info.bit_depth // 8
    expected = info.height * (1 + info.width * bpp)
    # Cap the output at the size IHDR promises so a malicious stream cannot exhaust memory.
    inflater = zlib.decompressobj()
    try:
        raw = inflater.decompress(b"".join(idat), expected)
    except zlib.error as exc:
        raise ValueError(f"corrupt PNG image data ({exc})") from None
    # Surplus data after the last row is ignored, as libpng does.
    if len(raw) < expected:
        raise ValueError(f"truncated PNG image data ({len(raw)} of {expected} bytes)")
    rows = np.frombuffer(raw, np.uint8).reshape(info.height, 1 + info.width * bpp)
    pixels = _unfilter(rows, info.width, bpp)
    if info.bit_depth == 16:
        pixels = pixels.reshape(info.height, info.width * channels, 2)
        pixels = pixels.view(">u2")[..., 0].astype(np.uint16)  # PNG samples are big-endian
    return pixels.reshape(info.height, info.width, channels), info


def _filter_block(x: np.ndarray, prev: np.ndarray, bpp: int, filter_type: int | None) -> np.ndarray:
    """Filter consecutive rows ``x`` (int16, (n, S)) given the row above them (``prev``, (S,))."""
    a = np.zeros_like(x)
    a[:, bpp:] = x[:, :-bpp]
    b = np.concatenate([prev[None], x[:-1]])
    c = np.zeros_like(x)
    c[:, bpp:] = b[:, :-bpp]
    preds = (None, a, b, (a + b) >> 1, _paeth(a, b, c))
    if filter_type is not None:
        types = np.full(len(x), filter_type, np.int16)
        filtered = x if filter_type == 0 else (x - preds[filter_type]) & 0xFF
    else:
        # Keep the best candidate per row; cost = sum of |filtered byte| read as signed.
        best, best_cost = x, np.minimum(x, 256 - x).sum(axis=1)
        types = np.zeros(len(x), np.int16)
        for t in range(1, 5):
            cand = (x - preds[t]) & 0xFF
            cost = np.minimum(cand, 256 - cand).sum(axis=1)
            better = cost < best_cost
            best = np.where(better[:, None], cand, best)
            best_cost = np.where(better, cost, best_cost)
            types[better] = t
        filtered = best
    return np.concatenate([types[:, None], filtered], axis=1).astype(np.uint8)


def _filter_rows(img: np.ndarray, bpp: int, filter_type: int | None) -> np.ndarray:
    """Apply PNG row filters to uint8 rows (H, S); returns (H, 1 + S) with type bytes.

    With ``filter_type=None`` each row gets the filter minimising the sum of absolute
    (signed) filtered bytes, the heuristic libpng uses; it typically shrinks smooth 16-bit
    data considerably compared to no filtering. Rows are processed in blocks of about
    1 MiB so that memory stays bounded for large (e.g. 4K) images.
    """
    height, stride = img.shape
    out = np.empty((height, 1 + stride), np.uint8)
    block = max(1, (1 << 20) // stride)
    for start in range(0, height, block):
        x = img[start : start + block].astype(np.int16)
        prev = img[start - 1].astype(np.int16) if start else np.zeros(stride, np.int16)
        out[start : start + len(x)] = _filter_block(x, prev, bpp, filter_type)
    return out


def encode(pixels: np.ndarray, compress_level: int = 6, filter_type: int | None = None) -> bytes:
    """Encode an image as PNG bytes.

    Args:
        pixels: uint8 or uint16 array, (H, W) or (H, W, C) with C in 1..4.
        compress_level: zlib level 0-9.
        filter_type: Row filter 0-4 for every row, or ``None`` for per-row adaptive choice.

    Returns:
        The complete PNG file contents.
    """
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    height, width, channels = pixels.shape
    if pixels.dtype == np.uint16:
        depth = 16
        raw = pixels.astype(">u2").view(np.uint8)
    elif pixels.dtype == np.uint8:
        depth = 8
        raw = pixels
    else:
        raise ValueError(f"PNG pixels must be uint8 or uint16, got {pixels.dtype}")
    bpp = channels * depth // 8
    rows = _filter_rows(np.ascontiguousarray(raw).reshape(height, width * bpp), bpp, filter_type)
    stream = zlib.compress(rows.tobytes(), compress_level)

    def chunk(ctype: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + ctype + body + struct.pack(">I", zlib.crc32(ctype + body))

    ihdr = struct.pack(">IIBBBBB", width, height, depth, _COLOR_TYPE[channels], 0, 0, 0)
    parts = [SIGNATURE, chunk(b"IHDR", ihdr)]
    parts += [chunk(b"IDAT", stream[i : i + _IDAT_CHUNK]) for i in range(0, len(stream), _IDAT_CHUNK)]
    parts.append(chunk(b"IEND", b""))
    return b"".join(parts)
