"""Flow readers/writers: .flo, KITTI 16-bit PNG, PFM and .npy."""

import struct

import numpy as np
import pytest

from pacup.io import ReadError, WriteError, read_flow, write_flow
from pacup.io import _png


@pytest.fixture
def flow_and_mask():
    rng = np.random.default_rng(1)
    flow = rng.uniform(-40, 40, size=(11, 19, 2)).astype(np.float32)
    valid = rng.random((11, 19)) > 0.25
    return flow, valid


@pytest.mark.parametrize("ext", [".flo", ".pfm", ".npy"])
def test_float_formats_round_trip_exactly(tmp_path, flow_and_mask, ext):
    flow, valid = flow_and_mask
    path = tmp_path / f"f{ext}"
    write_flow(path, flow, valid)
    out, out_valid = read_flow(path)
    assert out.dtype == np.float32 and out.shape == flow.shape
    np.testing.assert_array_equal(out_valid, valid)
    np.testing.assert_array_equal(out[valid], flow[valid])
    assert np.all(out[~valid] == 0)


def test_zero_flow_is_valid(tmp_path):
    # Unlike depth, 0 is a perfectly good flow value and must not read back as invalid.
    for ext in (".flo", ".png", ".pfm", ".npy"):
        write_flow(tmp_path / f"z{ext}", np.zeros((2, 3, 2)))
        assert read_flow(tmp_path / f"z{ext}")[1].all(), ext


def test_flo_layout(tmp_path):
    flow = np.array([[[1.5, -2.0], [3.0, 4.0]]], np.float32)  # H=1, W=2
    path = tmp_path / "f.flo"
    write_flow(path, flow, valid=np.array([[True, False]]))
    data = path.read_bytes()
    assert data[:4] == b"PIEH"
    assert struct.unpack("<fii", data[:12]) == (202021.25, 2, 1)
    assert struct.unpack("<4f", data[12:]) == (1.5, -2.0, 1e10, 1e10)


def test_flo_unknown_threshold(tmp_path):
    path = tmp_path / "u.flo"
    values = [0.0, 0.0, 1e9, 0.0, 0.0, -2e9, np.nan, 1.0]
    path.write_bytes(struct.pack("<fii", 202021.25, 4, 1) + struct.pack("<8f", *values))
    flow, valid = read_flow(path)
    np.testing.assert_array_equal(valid, [[True, True, False, False]])
    assert np.all(flow[0, 2:] == 0)


def test_flo_big_endian_is_read(tmp_path):
    path = tmp_path / "be.flo"
    path.write_bytes(struct.pack(">fii", 202021.25, 1, 1) + struct.pack(">2f", 0.25, -7.0))
    flow, valid = read_flow(path)
    np.testing.assert_array_equal(flow, [[[0.25, -7.0]]])
    assert valid.all()


@pytest.mark.parametrize(
    "content, fragment",
    [
        (b"PIEX" + struct.pack("<ii", 1, 1) + b"\0" * 8, "tag"),
        (struct.pack("<fii", 202021.25, 4, 4) + b"\0" * 100, "truncated"),
        (struct.pack("<fii", 202021.25, 1 << 30, 1 << 30) + b"\0" * 16, "truncated"),
        (struct.pack("<fii", 202021.25, -3, 2) + b"\0" * 16, "size"),
        (struct.pack("<fii", 202021.25, 1, 1) + b"\0" * 12, "unexpected"),
        (struct.pack("<f", 202021.25) + b"\0", "truncated"),
    ],
    ids=["wrong-tag", "truncated", "absurd-size", "negative-size", "trailing-bytes", "short-header"],
)
def test_flo_errors_name_the_file(tmp_path, content, fragment, assert_one_line_error):
    path = tmp_path / "bad.flo"
    path.write_bytes(content)
    with pytest.raises(ReadError) as exc_info:
        read_flow(path)
    assert_one_line_error(exc_info, path, fragment)


def test_kitti_png_round_trip_keeps_16_bits(tmp_path):
    rng = np.random.default_rng(2)
    # Multiples of 1/64 in [-500, 500], including both extremes: exactly representable.
    flow = rng.integers(-500 * 64, 500 * 64 + 1, size=(9, 14, 2)).astype(np.float32) / 64
    flow[0, 0] = (500.0, -500.0)
    flow[0, 1] = (1 / 64, -1 / 64)
    valid = rng.random((9, 14)) > 0.3
    valid[0, :2] = True
    path = tmp_path / "kitti.png"
    write_flow(path, flow, valid)
    out, out_valid = read_flow(path)
    np.testing.assert_array_equal(out_valid, valid)
    np.testing.assert_array_equal(out[valid], flow[valid])

    # The raw channels follow the KITTI devkit: R,G = flow*64 + 2^15, B = validity.
    pixels, info = _png.decode(path.read_bytes())
    assert (info.bit_depth, pixels.shape[2]) == (16, 3)
    np.testing.assert_array_equal(pixels[..., 2], valid.astype(np.uint16))
    assert tuple(pixels[0, 0, :2]) == (500 * 64 + 32768, -500 * 64 + 32768)
    assert np.all(pixels[~valid] == 0)


def test_kitti_png_rounds_to_1_64(tmp_path):
    path = tmp_path / "r.png"
    write_flow(path, np.array([[[0.3, -0.01]]]))
    out, _ = read_flow(path)
    np.testing.assert_allclose(out, [[[19 / 64, -1 / 64]]])


def test_kitti_validity_channel_alone_decides(tmp_path):
    # A file whose B channel is 0 is invalid even if R/G hold plausible values.
    pixels = np.zeros((1, 2, 3), np.uint16)
    pixels[0, :, :2] = 32768 + 64
    pixels[0, 1, 2] = 1
    (tmp_path / "v.png").write_bytes(_png.encode(pixels))
    flow, valid = read_flow(tmp_path / "v.png")
    np.testing.assert_array_equal(valid, [[False, True]])
    np.testing.assert_array_equal(flow, [[[0, 0], [1, 1]]])


def test_kitti_png_clipping_warns(tmp_path):
    path = tmp_path / "c.png"
    with pytest.warns(UserWarning, match="clipped"):
        write_flow(path, np.array([[[600.0, -600.0]]]))
    out, valid = read_flow(path)
    np.testing.assert_allclose(out, [[[65535 / 64 - 512, -512]]])
    assert valid.all()


def test_kitti_8bit_png_is_rejected(tmp_path, assert_one_line_error):
    path = tmp_path / "rgb8.png"
    path.write_bytes(_png.encode(np.zeros((2, 2, 3), np.uint8)))
    with pytest.raises(ReadError) as exc_info:
        read_flow(path)
    assert_one_line_error(exc_info, path, "16-bit RGB")


def test_pfm_third_channel(tmp_path):
    from pacup.io import _pfm

    path = tmp_path / "f.pfm"
    write_flow(path, np.ones((2, 2, 2)))
    stored = _pfm.decode(path.read_bytes())
    assert stored.shape == (2, 2, 3) and np.all(stored[..., 2] == 0)
    # A third channel with content is ignored on read.
    path.write_bytes(_pfm.encode(np.full((1, 1, 3), 5.0), little_endian=False))
    np.testing.assert_array_equal(read_flow(path)[0], [[[5.0, 5.0]]])


def test_pfm_one_channel_is_rejected(tmp_path, assert_one_line_error):
    path = tmp_path / "one.pfm"
    path.write_bytes(b"Pf\n1 1\n-1.0\n" + b"\0" * 4)
    with pytest.raises(ReadError) as exc_info:
        read_flow(path)
    assert_one_line_error(exc_info, path, "3-channel")


@pytest.mark.parametrize("shape", [(2, 4, 4), (4, 4), (4, 4, 3)])
def test_npy_must_be_hxwx2(tmp_path, shape, assert_one_line_error):
    path = tmp_path / "f.npy"
    np.save(path, np.zeros(shape, np.float32))
    with pytest.raises(ReadError) as exc_info:
        read_flow(path)
    assert_one_line_error(exc_info, path, "HxWx2")


@pytest.mark.parametrize("ext", [".flo", ".png", ".pfm", ".npy"])
def test_write_flow_rejects_bad_shape(tmp_path, ext, assert_one_line_error):
    path = tmp_path / f"o{ext}"
    with pytest.raises(WriteError) as exc_info:
        write_flow(path, np.zeros((2, 4, 4)))
    assert_one_line_error(exc_info, path, "HxWx2")
    assert not path.exists()


def test_nonfinite_flow_is_written_invalid(tmp_path):
    flow = np.array([[[np.nan, 1.0], [2.0, 3.0]]])
    for ext in (".flo", ".png", ".pfm", ".npy"):
        write_flow(tmp_path / f"n{ext}", flow, valid=np.ones((1, 2), bool))
        np.testing.assert_array_equal(read_flow(tmp_path / f"n{ext}")[1], [[False, True]], err_msg=ext)
