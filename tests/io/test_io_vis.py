"""Colour maps, flow wheel, side-by-side panels and image writing."""

import colorsys

import numpy as np
import pytest
from PIL import Image

from pacup.io import WriteError, colorize_depth, colorize_flow, side_by_side, write_image
from pacup.io.vis import COLORMAPS


def _hue_degrees(rgb):
    h, s, v = colorsys.rgb_to_hsv(*(np.asarray(rgb, float) / 255))
    return h * 360, s, v


@pytest.mark.parametrize("cmap", ["turbo", "inferno"])
def test_colorize_depth_shape_dtype_and_invalid_black(cmap):
    depth = np.linspace(1, 10, 30, dtype=np.float32).reshape(5, 6)
    valid = np.ones_like(depth, bool)
    valid[0, 0] = False
    depth[1, 1] = np.nan  # non-finite is never drawn as valid
    rgb = colorize_depth(depth, valid, cmap=cmap)
    assert rgb.dtype == np.uint8 and rgb.shape == (5, 6, 3)
    assert np.all(rgb[0, 0] == 0) and np.all(rgb[1, 1] == 0)
    assert rgb[valid & np.isfinite(depth)].max() > 0


def test_colormap_tables_look_right():
    turbo, inferno = COLORMAPS["turbo"], COLORMAPS["inferno"]
    assert turbo.shape == inferno.shape == (256, 3)
    assert turbo.dtype == np.uint8
    # Turbo runs dark -> blue -> green -> yellow -> dark red (the polynomial fit is a little
    # off at the very ends: (35, 23, 27) instead of (48, 18, 59) at 0, so only check shape).
    assert turbo[0].max() < 60 and turbo[40, 2] > 200 and turbo[128, 1] > 200 and turbo[255, 0] > 3 * turbo[255, 2]
    # inferno black -> purple -> pale yellow.
    assert inferno[0].max() < 10 and inferno[255].min() > 150
    # Inferno is perceptually ordered: luminance increases monotonically.
    luminance = inferno @ np.array([0.299, 0.587, 0.114])
    assert np.all(np.diff(luminance) > -1.0)


def test_colorize_depth_default_percentiles_ignore_outliers():
    depth = np.tile(np.linspace(1, 2, 100), (2, 1))
    depth[0, 0] = 1000.0  # one far outlier must not compress everything else to one colour
    rgb = colorize_depth(depth)
    assert len(np.unique(rgb[1].reshape(-1, 3), axis=0)) > 50


def test_colorize_depth_explicit_range_clamps():
    lut = COLORMAPS["turbo"]
    rgb = colorize_depth(np.array([[0.5, 1.0, 2.0, 3.0, 9.0]]), vmin=1.0, vmax=3.0)
    np.testing.assert_array_equal(rgb[0], [lut[0], lut[0], lut[128], lut[255], lut[255]])


def test_colorize_depth_edge_cases():
    assert np.all(colorize_depth(np.zeros((3, 3))) == 0)  # nothing valid -> all black
    constant = colorize_depth(np.full((2, 2), 4.0))
    assert np.all(constant == COLORMAPS["turbo"][0])
    with pytest.raises(ValueError, match="colormap"):
        colorize_depth(np.ones((2, 2)), cmap="jet")
    with pytest.raises(ValueError):
        colorize_depth(np.ones((2, 2, 2)))


def test_flow_wheel_directions():
    # Middlebury convention (image y down): +x red, +y yellow, -x light blue/cyan, -y violet.
    flow = np.array([[[1, 0], [0, 1], [-1, 0], [0, -1]]], np.float32)
    rgb = colorize_flow(flow, max_norm=1.0)[0]
    hues = [_hue_degrees(c)[0] for c in rgb]
    assert tuple(rgb[0]) == (255, 0, 0)
    assert 45 <= hues[1] <= 70
    assert 180 <= hues[2] <= 210
    assert 250 <= hues[3] <= 280
    for c in rgb:
        assert _hue_degrees(c)[1] > 0.95  # full magnitude = fully saturated


def test_zero_flow_is_white_and_invalid_black():
    flow = np.zeros((2, 3, 2), np.float32)
    flow[1, 2] = (np.inf, 0)
    valid = np.ones((2, 3), bool)
    valid[0, 1] = False
    rgb = colorize_flow(flow, valid)
    assert np.all(rgb[0, 0] == 255)
    assert np.all(rgb[0, 1] == 0) and np.all(rgb[1, 2] == 0)


def test_flow_normalisation():
    flow = np.array([[[2.0, 0.0], [4.0, 0.0]]])
    auto = colorize_flow(flow)  # default: the largest magnitude (4) is fully saturated
    assert tuple(auto[0, 1]) == (255, 0, 0)
    assert _hue_degrees(auto[0, 0])[1] == pytest.approx(0.5, abs=0.02)
    # Fixed max_norm: the same vector gets the same colour in every frame...
    np.testing.assert_array_equal(colorize_flow(flow[:, :1], max_norm=4.0)[0, 0], auto[0, 0])
    # ... and vectors longer than max_norm are darkened instead of wrapping around.
    over = colorize_flow(np.array([[[8.0, 0.0]]]), max_norm=4.0)[0, 0]
    assert tuple(over) == (191, 0, 0)
    with pytest.raises(ValueError, match="max_norm"):
        colorize_flow(flow, max_norm=0)


def test_side_by_side():
    small = np.full((2, 3, 3), 10, np.uint8)
    big = np.full((4, 5, 3), 200, np.uint8)
    grey = np.full((4, 1), 50, np.uint8)
    out = side_by_side([small, big, grey], pad=2)
    assert out.dtype == np.uint8
    assert out.shape == (4, 6 + 2 + 5 + 2 + 1, 3)
    assert np.all(out[:, :6] == 10) and np.all(out[:, 6:8] == 255) and np.all(out[:, 8:13] == 200)
    assert np.all(out[:, -1] == 50)
    # Nearest-neighbour 2x upscaling replicates each pixel into a 2x2 block.
    checker = np.zeros((2, 2, 3), np.uint8)
    checker[0, 0] = checker[1, 1] = 255
    up = side_by_side([checker, np.zeros((4, 4, 3), np.uint8)], pad=0)[:, :4, 0]
    np.testing.assert_array_equal(up, np.kron([[255, 0], [0, 255]], np.ones((2, 2), int)))
    with pytest.raises(ValueError):
        side_by_side([])
    with pytest.raises(ValueError):
        side_by_side([np.zeros((2, 2, 3), np.float32)])


def test_write_image_round_trip(tmp_path):
    rgb = colorize_flow(np.random.default_rng(0).normal(size=(6, 7, 2)))
    write_image(tmp_path / "v.png", rgb)
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "v.png")), rgb)
    with pytest.raises(WriteError, match="uint8"):
        write_image(tmp_path / "f.png", rgb.astype(np.float32))
    with pytest.raises(WriteError, match="HxWx3"):
        write_image(tmp_path / "f.png", np.zeros((2, 2, 4), np.uint8))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.png"]
