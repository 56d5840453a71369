"""Depth readers/writers: round trips per format, units, validity and error reporting."""

import struct

import numpy as np
import pytest
from PIL import Image

from pacup.io import ReadError, WriteError, read_depth, write_depth
from pacup.io import _pfm


@pytest.fixture
def depth_and_mask():
    rng = np.random.default_rng(0)
    depth = rng.uniform(0.5, 60.0, size=(13, 17)).astype(np.float32)
    valid = rng.random((13, 17)) > 0.2
    return depth, valid


def test_png16_round_trip_with_scale(tmp_path, depth_and_mask):
    depth, valid = depth_and_mask
    path = tmp_path / "d.png"
    write_depth(path, depth, valid, depth_scale=1000)
    out, out_valid = read_depth(path, depth_scale=1000)
    assert out.dtype == np.float32 and out.shape == depth.shape
    np.testing.assert_array_equal(out_valid, valid)
    np.testing.assert_allclose(out[valid], np.round(depth[valid] * 1000) / 1000, atol=1e-6)
    assert np.all(out[~valid] == 0)
    # Independent check with Pillow: a 16-bit greyscale PNG in millimetres, 0 = invalid.
    with Image.open(path) as im:
        assert im.mode.startswith("I;16")
        stored = np.asarray(im)
    np.testing.assert_array_equal(stored[valid], np.round(depth[valid] * 1000))
    assert np.all(stored[~valid] == 0)


def test_png16_keeps_all_16_bits(tmp_path):
    stored = np.array([[1, 65535, 0], [256, 255, 12345]], np.float32)
    path = tmp_path / "extremes.png"
    write_depth(path, stored)  # default validity: > 0, so the 0 is invalid
    depth, valid = read_depth(path)
    np.testing.assert_array_equal(depth, stored)
    np.testing.assert_array_equal(valid, stored > 0)
    # Re-writing what we read reproduces the file's values exactly (default = stored units).
    path2 = tmp_path / "again.png"
    write_depth(path2, depth, valid)
    np.testing.assert_array_equal(np.asarray(Image.open(path2)), np.asarray(Image.open(path)))


def test_png_written_by_pillow_is_read_exactly(tmp_path):
    # Pillow's encoder uses adaptive row filters, exercising a real-world file layout.
    stored = (np.arange(40 * 30).reshape(30, 40) * 53 % 65536).astype(np.uint16)
    Image.fromarray(stored).save(tmp_path / "p16.png")
    depth, valid = read_depth(tmp_path / "p16.png", depth_scale=5000)
    np.testing.assert_allclose(depth, np.where(stored > 0, stored / 5000, 0), rtol=1e-6)
    np.testing.assert_array_equal(valid, stored > 0)


def test_png8_is_accepted(tmp_path):
    stored = np.array([[0, 1, 255]], np.uint8)
    Image.fromarray(stored).save(tmp_path / "d8.png")
    depth, valid = read_depth(tmp_path / "d8.png")
    np.testing.assert_array_equal(depth, [[0, 1, 255]])
    np.testing.assert_array_equal(valid, [[False, True, True]])


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "P", "LA"])
def test_png_with_colour_channels_is_rejected(tmp_path, mode, assert_one_line_error):
    path = tmp_path / "colour.png"
    Image.new(mode, (4, 3)).save(path)
    with pytest.raises(ReadError) as exc_info:
        read_depth(path)
    assert_one_line_error(exc_info, path, "single-channel")


def test_png_clipping_warns(tmp_path):
    path = tmp_path / "clip.png"
    with pytest.warns(UserWarning, match="clipped"):
        write_depth(path, np.array([[0.3, 70000.0, 5.0]]), np.array([[True, True, True]]))
    depth, valid = read_depth(path)
    np.testing.assert_array_equal(depth, [[1, 65535, 5]])
    assert valid.all()


def test_npy_round_trip_and_invalid_values(tmp_path, depth_and_mask):
    depth, valid = depth_and_mask
    path = tmp_path / "d.npy"
    write_depth(path, depth, valid)
    out, out_valid = read_depth(path)
    np.testing.assert_array_equal(out_valid, valid)
    np.testing.assert_array_equal(out[valid], depth[valid])
    # Invalid pixels are stored as 0 so any numpy user sees them as "no depth".
    assert np.all(np.load(path)[~valid] == 0)

    raw = np.array([[np.nan, np.inf, -1.0, 0.0, 2.5]], np.float64)
    np.save(tmp_path / "raw.npy", raw)
    out, out_valid = read_depth(tmp_path / "raw.npy")
    np.testing.assert_array_equal(out_valid, [[False, False, False, False, True]])
    np.testing.assert_array_equal(out, [[0, 0, 0, 0, 2.5]])
    assert out.dtype == np.float32


def test_npy_integer_and_hxwx1_accepted(tmp_path):
    np.save(tmp_path / "int.npy", np.array([[[0], [7]]], np.int32))
    depth, valid = read_depth(tmp_path / "int.npy", depth_scale=2)
    np.testing.assert_array_equal(depth, [[0, 3.5]])
    np.testing.assert_array_equal(valid, [[False, True]])


@pytest.mark.parametrize("array", [np.zeros((2, 3, 4)), np.zeros(5), np.array([["a"]])])
def test_npy_wrong_shape_or_dtype(tmp_path, array, assert_one_line_error):
    path = tmp_path / "bad.npy"
    np.save(path, array)
    with pytest.raises(ReadError) as exc_info:
        read_depth(path)
    assert_one_line_error(exc_info, path)


def test_npy_pickle_is_refused(tmp_path, assert_one_line_error):
    path = tmp_path / "obj.npy"
    np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ReadError) as exc_info:
        read_depth(path)
    assert_one_line_error(exc_info, path)


@pytest.mark.parametrize("little_endian", [True, False])
def test_pfm_round_trip_both_endiannesses(tmp_path, depth_and_mask, little_endian):
    depth, valid = depth_and_mask
    depth = np.where(valid, depth, np.nan).astype(np.float32)
    path = tmp_path / "d.pfm"
    path.write_bytes(_pfm.encode(depth, little_endian=little_endian))
    assert path.read_bytes().split(b"\n")[2] == (b"-1.0" if little_endian else b"1.0")
    out, out_valid = read_depth(path)
    np.testing.assert_array_equal(out_valid, valid)
    np.testing.assert_array_equal(out[valid], depth[valid])

    path2 = tmp_path / "w.pfm"
    write_depth(path2, out, out_valid, depth_scale=10)
    out2, valid2 = read_depth(path2, depth_scale=10)
    np.testing.assert_array_equal(valid2, valid)
    np.testing.assert_allclose(out2, out, rtol=1e-6)


def test_pfm_rows_are_bottom_up(tmp_path):
    # Hand-made file: 1 column, 2 rows, little-endian; the first stored row is the bottom one.
    path = tmp_path / "hand.pfm"
    path.write_bytes(b"Pf\n1 2\n-1.0\n" + struct.pack("<2f", 2.0, 1.0))
    depth, _ = read_depth(path)
    np.testing.assert_array_equal(depth, [[1.0], [2.0]])
    path.write_bytes(b"Pf\n1 2\n1.0\n" + struct.pack(">2f", 2.0, 1.0))
    np.testing.assert_array_equal(read_depth(path)[0], [[1.0], [2.0]])


@pytest.mark.parametrize(
    "content, fragment",
    [
        (b"Pf\n2 2\n-1.0\n" + b"\0" * 12, "truncated"),
        (b"Pf\n2 2\n-1.0\n" + b"\0" * 20, "unexpected"),
        (b"PF\n1 1\n-1.0\n" + b"\0" * 12, "3-channel"),
        (b"Pf\n1 1\n0\n" + b"\0" * 4, "scale"),
        (b"P6\n1 1\n255\n" + b"\0" * 3, "not a pfm"),
    ],
)
def test_pfm_errors(tmp_path, content, fragment, assert_one_line_error):
    path = tmp_path / "bad.pfm"
    path.write_bytes(content)
    with pytest.raises(ReadError) as exc_info:
        read_depth(path)
    assert_one_line_error(exc_info, path, fragment)


@pytest.mark.parametrize("ext", [".tif", ".tiff"])
def test_tiff_float32_round_trip(tmp_path, depth_and_mask, ext):
    depth, valid = depth_and_mask
    path = tmp_path / f"d{ext}"
    write_depth(path, depth, valid)
    out, out_valid = read_depth(path)
    np.testing.assert_array_equal(out_valid, valid)
    np.testing.assert_array_equal(out[valid], depth[valid])
    with Image.open(path) as im:
        assert im.mode == "F"  # float32 single channel, not a rescaled integer image


def test_tiff_readable_by_tifffile(tmp_path, depth_and_mask):
    tifffile = pytest.importorskip("tifffile")
    depth, valid = depth_and_mask
    write_depth(tmp_path / "d.tif", depth, valid)
    data = tifffile.imread(tmp_path / "d.tif")
    assert data.dtype == np.float32
    np.testing.assert_array_equal(data, np.where(valid, depth, 0))


def test_multichannel_tiff_is_rejected(tmp_path, assert_one_line_error):
    path = tmp_path / "rgb.tif"
    Image.new("RGB", (3, 2)).save(path)
    with pytest.raises(ReadError) as exc_info:
        read_depth(path)
    assert_one_line_error(exc_info, path, "channels")


def test_bad_depth_scale(tmp_path):
    np.save(tmp_path / "d.npy", np.ones((2, 2), np.float32))
    with pytest.raises(ReadError, match="depth_scale"):
        read_depth(tmp_path / "d.npy", depth_scale=0)
    with pytest.raises(WriteError, match="depth_scale"):
        write_depth(tmp_path / "o.npy", np.ones((2, 2)), depth_scale=-3)


@pytest.mark.parametrize("bad", [np.ones((2, 2, 2)), np.ones(4), np.ones((0, 3)), np.array([["x"]])])
def test_write_depth_rejects_bad_arrays(tmp_path, bad, assert_one_line_error):
    path = tmp_path / "o.png"
    with pytest.raises(WriteError) as exc_info:
        write_depth(path, bad)
    assert_one_line_error(exc_info, path)
    assert not path.exists()


def test_write_depth_rejects_mask_of_wrong_shape(tmp_path):
    with pytest.raises(WriteError, match="valid mask"):
        write_depth(tmp_path / "o.npy", np.ones((2, 3)), valid=np.ones((3, 2), bool))
