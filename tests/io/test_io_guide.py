"""Guide image reading."""

import numpy as np
import pytest
from PIL import Image

from pacup.io import ReadError, read_guide, write_image


def test_rgb_png(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    write_image(tmp_path / "g.png", rgb)
    out = read_guide(tmp_path / "g.png")
    assert out.dtype == np.uint8 and out.shape == (5, 7, 3)
    np.testing.assert_array_equal(out, rgb)


@pytest.mark.parametrize("mode", ["L", "LA", "P", "RGBA", "CMYK", "1"])
def test_other_modes_become_rgb(tmp_path, mode):
    path = tmp_path / ("g.tif" if mode == "CMYK" else "g.png")
    Image.new(mode, (4, 3)).save(path)
    out = read_guide(path)
    assert out.dtype == np.uint8 and out.shape == (3, 4, 3)


def test_grey_is_replicated(tmp_path):
    Image.fromarray(np.array([[0, 128, 255]], np.uint8)).save(tmp_path / "g.png")
    np.testing.assert_array_equal(read_guide(tmp_path / "g.png")[0], [[0] * 3, [128] * 3, [255] * 3])


def test_16bit_grey_is_scaled(tmp_path):
    Image.fromarray(np.array([[0, 257, 32896, 65535]], np.uint16)).save(tmp_path / "g16.png")
    np.testing.assert_array_equal(read_guide(tmp_path / "g16.png")[0, :, 0], [0, 1, 128, 255])


def test_jpeg(tmp_path):
    write_image(tmp_path / "g.jpg", np.full((8, 8, 3), 100, np.uint8))
    assert np.abs(read_guide(tmp_path / "g.jpg").astype(int) - 100).max() <= 2


def test_float_image_is_rejected(tmp_path, assert_one_line_error):
    path = tmp_path / "f.tif"
    Image.fromarray(np.ones((2, 2), np.float32)).save(path)
    with pytest.raises(ReadError) as exc_info:
        read_guide(path)
    assert_one_line_error(exc_info, path, "floating-point")


def test_not_an_image(tmp_path, assert_one_line_error):
    path = tmp_path / "notes.png"
    path.write_text("hello")
    with pytest.raises(ReadError) as exc_info:
        read_guide(path)
    assert_one_line_error(exc_info, path, "cannot decode")
