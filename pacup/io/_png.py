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


def read_info(data: bytes) -> PngInfo:
    """Parse only the IHDR chunk of a PNG held in ``data``.

    Raises:
        ValueError: Not a PNG or the header is malformed.
    """
    ctype, body = next(_chunks(data))
    return _parse_ihdr(ctype, body)


def _parse_ihdr(ctype: bytes, body: bytes) -> PngInfo:
    if ctype != b"IHDR" or len(body) != 13:
        raise ValueError("corrupt PNG (first chunk is not a valid IHDR)")
    width, height, depth, color_type, _comp, _filter, interlace = struct.unpack(">IIBBBBB", body)
    if width == 0 or height == 0:
        raise ValueError("corrupt PNG (zero width or height)")
    return PngInfo(width, height, depth, color_type, interlace)


def _paeth(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Paeth predictor (PNG spec 9.4) on int32 arrays."""
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

    A pixel's reconstruction depends on its left, upper and upper-left neighbours, so the
    rows cannot be decoded independently and the Average/Paeth filters are non-linear along
    a row. Pixels on the same anti-diagonal (x + y = t) are, however, independent of each
    other, so we sweep the H + W - 1 anti-diagonals and vectorise within each: a few
    thousand numpy steps for a KITTI-sized image instead of millions of Python operations.
    """
    height = rows.shape[0]
    ftype = rows[:, 0]
    if ftype.size and ftype.max() > 4:
        raise ValueError(f"corrupt PNG (invalid row filter type {int(ftype.max())})")
    filt = rows[:, 1:].reshape(height, width, bpp).astype(np.int32)
    if not ftype.any():  # every row unfiltered (filter type 0): nothing to undo
        return filt.astype(np.uint8)
    # Padded output: row 0 and column 0 are the zero bytes the spec assumes outside the image.
    out = np.zeros((height + 1, width + 1, bpp), np.int32)
    ftype = ftype.astype(np.int32)
    for t in range(height + width - 1):
        ys = np.arange(max(0, t - width + 1), min(height, t + 1))
        xs = t - ys
        a = out[ys + 1, xs]  # left
        b = out[ys, xs + 1]  # up
        c = out[ys, xs]  # up-left
        f = ftype[ys][:, None]
        pred = np.select([f == 1, f == 2, f == 3, f == 4], [a, b, (a + b) >> 1, _paeth(a, b, c)], 0)
        out[ys + 1, xs + 1] = (filt[ys, xs] + pred) & 0xFF
    return out[1:, 1:].astype(np.uint8)


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


def _filter_rows(img: np.ndarray, bpp: int, filter_type: int | None) -> np.ndarray:
    """Apply PNG row filters to uint8 rows (H, S); returns (H, 1 + S) with type bytes.

    With ``filter_type=None`` each row gets the filter minimising the sum of absolute
    (signed) filtered bytes, the heuristic libpng uses; it typically shrinks smooth 16-bit
    data considerably compared to no filtering.
    """
    x = img.astype(np.int32)
    a = np.zeros_like(x)
    a[:, bpp:] = x[:, :-bpp]
    b = np.zeros_like(x)
    b[1:] = x[:-1]
    c = np.zeros_like(x)
    c[1:, bpp:] = x[:-1, :-bpp]
    preds = (np.zeros_like(x), a, b, (a + b) >> 1, _paeth(a, b, c))
    if filter_type is not None:
        types = np.full(x.shape[0], filter_type, np.int64)
        filtered = (x - preds[filter_type]) & 0xFF
    else:
        candidates = np.stack([(x - p) & 0xFF for p in preds])  # (5, H, S)
        cost = np.minimum(candidates, 256 - candidates).sum(axis=2)  # (5, H)
        types = cost.argmin(axis=0)
        filtered = np.take_along_axis(candidates, types[None, :, None], axis=0)[0]
    return np.concatenate([types[:, None], filtered], axis=1).astype(np.uint8)


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
