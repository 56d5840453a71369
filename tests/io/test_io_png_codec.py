"""The internal PNG codec, cross-checked against Pillow wherever Pillow supports the variant."""

import io
import zlib

import numpy as np
import pytest
from PIL import Image

from pacup.io import _png


def _smooth16(shape, seed=0):
    rng = np.random.default_rng(seed)
    return (np.cumsum(rng.integers(-300, 300, shape), axis=1) + 30000).clip(0, 65535).astype(np.uint16)


@pytest.mark.parametrize("filter_type", [None, 0, 1, 2, 3, 4])
def test_our_16bit_grey_is_read_by_pillow(filter_type):
    img = _smooth16((23, 31))
    data = _png.encode(img, filter_type=filter_type)
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(data))), img)
    decoded, info = _png.decode(data)
    assert info.description == "16-bit greyscale"
    np.testing.assert_array_equal(decoded[..., 0], img)


def test_pillow_16bit_grey_is_read_by_us():
    img = _smooth16((40, 57), seed=3)
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    decoded, _ = _png.decode(buf.getvalue())
    np.testing.assert_array_equal(decoded[..., 0], img)


@pytest.mark.parametrize("mode, channels", [("L", 1), ("LA", 2), ("RGB", 3), ("RGBA", 4)])
def test_8bit_variants_match_pillow(mode, channels):
    rng = np.random.default_rng(4)
    img = np.cumsum(rng.integers(0, 9, (21, 26, channels)), axis=1).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(img[..., 0] if channels == 1 else img).save(buf, format="PNG")
    decoded, info = _png.decode(buf.getvalue())
    assert info.bit_depth == 8
    np.testing.assert_array_equal(decoded, img)


@pytest.mark.parametrize("filter_type", [None, 0, 1, 2, 3, 4])
def test_16bit_rgb_round_trip(filter_type):
    rng = np.random.default_rng(5)
    img = rng.integers(0, 65536, (17, 12, 3), dtype=np.uint16)
    img[0, 0] = (0, 65535, 1)
    decoded, info = _png.decode(_png.encode(img, filter_type=filter_type))
    assert info.description == "16-bit RGB"
    np.testing.assert_array_equal(decoded, img)


def test_corruption_is_detected():
    data = bytearray(_png.encode(_smooth16((8, 8))))
    with pytest.raises(ValueError, match="truncated"):
        _png.decode(bytes(data[:-20]))
    flipped = data.copy()
    flipped[45] ^= 0xFF  # inside the IDAT payload
    with pytest.raises(ValueError, match="CRC"):
        _png.decode(bytes(flipped))
    with pytest.raises(ValueError, match="signature"):
        _png.decode(b"GIF89a" + bytes(data[6:]))


def test_short_image_data_is_detected():
    # Valid chunks and CRCs but fewer rows than IHDR promises.
    good = _png.encode(np.zeros((4, 4), np.uint8), filter_type=0)
    rows = zlib.compress(b"\0" * 5 * 2)
    ihdr_end = 8 + 25
    idat = len(rows).to_bytes(4, "big") + b"IDAT" + rows + zlib.crc32(b"IDAT" + rows).to_bytes(4, "big")
    data = good[:ihdr_end] + idat + good[-12:]
    with pytest.raises(ValueError, match="truncated"):
        _png.decode(data)


def test_palette_png_is_unsupported():
    buf = io.BytesIO()
    Image.new("P", (3, 3)).save(buf, format="PNG")
    with pytest.raises(ValueError, match="palette"):
        _png.decode(buf.getvalue())


def test_absurd_ihdr_size_is_refused_before_inflating():
    good = _png.encode(np.zeros((1, 1, 3), np.uint16))
    ihdr = (100_000).to_bytes(4, "big") * 2 + good[24:29]
    chunk = len(ihdr).to_bytes(4, "big") + b"IHDR" + ihdr + zlib.crc32(b"IHDR" + ihdr).to_bytes(4, "big")
    with pytest.raises(ValueError, match="too large"):
        _png.decode(good[:8] + chunk + good[33:])
