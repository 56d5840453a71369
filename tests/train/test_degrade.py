import numpy as np
import pytest
from PIL import Image

from pacup.train.degrade import METHODS, crop_to_multiple, degrade


def _rand(h, w, seed=0, lo=0.5, hi=10.0):
    return np.random.default_rng(seed).uniform(lo, hi, (h, w)).astype(np.float32)


def test_crop_to_multiple_and_output_shape():
    gt = _rand(35, 50)
    assert crop_to_multiple(gt, 4).shape == (32, 48)
    for m in METHODS:
        low, lv = degrade(gt, 4, m)
        assert low.shape == (8, 12) and lv.shape == (8, 12)
        assert low.dtype == np.float32 and lv.dtype == bool
        assert lv.all()


@pytest.mark.parametrize("s", [2, 4, 8])
def test_point_is_top_left_lattice(s):
    gt = np.arange(1, 41 * 67 + 1, dtype=np.float32).reshape(41, 67)
    low, lv = degrade(gt, s, "point")
    h, w = 41 // s, 67 // s
    ii, jj = np.mgrid[0:h, 0:w]
    np.testing.assert_array_equal(low, gt[ii * s, jj * s])
    assert lv.all()


@pytest.mark.parametrize("method,flt", [("bicubic", Image.BICUBIC), ("bilinear_aa", Image.BILINEAR)])
@pytest.mark.parametrize("s", [2, 4, 8, 16])
def test_resize_matches_pillow_exactly(method, flt, s):
    gt = _rand(96, 128, seed=s)
    ref = np.asarray(Image.fromarray(gt).resize((128 // s, 96 // s), flt), dtype=np.float32)
    low, lv = degrade(gt, s, method)
    np.testing.assert_array_equal(low, ref)
    assert lv.all()


def test_bicubic_crops_top_left_before_resizing():
    gt = _rand(37, 45)
    ref = np.asarray(Image.fromarray(gt[:36, :44]).resize((11, 9), Image.BICUBIC))
    np.testing.assert_array_equal(degrade(gt, 4, "bicubic")[0], ref)


def test_area_is_block_mean():
    gt = _rand(24, 32)
    low, _ = degrade(gt, 4, "area")
    ref = gt.reshape(6, 4, 8, 4).mean(axis=(1, 3))
    np.testing.assert_allclose(low, ref, rtol=1e-6)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("s", [2, 4, 8])
def test_flow_vectors_scaled_by_one_over_s(method, s):
    flow = np.stack([np.full((64, 64), 3.0), np.full((64, 64), -2.0)], -1).astype(np.float32)
    flow[10:20, 10:30] = 0.0  # zero flow is a valid flow value
    low, lv = degrade(flow, s, method, flow=True)
    assert low.shape == (64 // s, 64 // s, 2) and lv.all()
    # every method is linear, so degrading flow == degrading each channel, then / s
    for c in range(2):
        ref, _ = degrade(flow[..., c] + 100.0, s, method)  # + 100: no zeros = no invalid depth
        np.testing.assert_allclose(low[..., c], (ref - 100.0) / s, atol=2e-5)
    # a constant field keeps its value / s
    const = np.broadcast_to(np.array([5.0, -7.0], np.float32), (32, 32, 2))
    low, _ = degrade(const, s, method, flow=True)
    np.testing.assert_allclose(low[..., 0], 5.0 / s, rtol=1e-5)
    np.testing.assert_allclose(low[..., 1], -7.0 / s, rtol=1e-5)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("bad", [0.0, np.nan, 1e6])
def test_invalid_never_mixed_into_valid(method, bad):
    s = 4
    rng = np.random.default_rng(2)
    gt = np.full((64, 64), 2.5, np.float32)
    valid = rng.random((64, 64)) > 0.3
    valid[:16, :16] = False  # whole blocks invalid
    valid[32:36, 32:36] = True
    gt[~valid] = bad
    low, lv = degrade(gt, s, method, valid=valid if bad == 1e6 else None)
    assert lv.any()
    np.testing.assert_allclose(low[lv], 2.5, rtol=1e-5)  # constant stays constant: no leak
    assert (low[~lv] == 0).all()
    assert not lv[:4, :4].any()
    if method == "point":
        np.testing.assert_array_equal(lv, valid[::s, ::s])
    else:
        frac = valid.reshape(16, s, 16, s).mean(axis=(1, 3))
        assert not lv[frac < 0.5].any()
        if method == "area":
            np.testing.assert_array_equal(lv, frac >= 0.5)


def test_masked_area_is_mean_of_valid_pixels():
    gt = _rand(8, 8, seed=3)
    valid = np.ones((8, 8), bool)
    valid[0, 0] = False
    low, lv = degrade(gt, 4, "area", valid=valid)
    assert lv.all()
    np.testing.assert_allclose(low[0, 0], gt[:4, :4][valid[:4, :4]].mean(), rtol=1e-6)


def test_flow_unknown_values_are_invalid():
    flow = np.zeros((16, 16, 2), np.float32)
    flow[:8, :8] = 1e10  # Middlebury "unknown"
    low, lv = degrade(flow, 4, "bilinear_aa", flow=True)
    assert not lv[:2, :2].any() and lv[2:, 2:].all()
    assert np.abs(low).max() < 1.0


def test_bad_method_and_factor():
    gt = _rand(16, 16)
    with pytest.raises(ValueError) as e:
        degrade(gt, 4, "nearest")
    for m in METHODS:
        assert m in str(e.value)
    with pytest.raises(ValueError):
        degrade(gt, 0, "point")
    with pytest.raises(ValueError):
        degrade(gt, 2.5, "point")
    with pytest.raises(ValueError):
        degrade(gt[..., None].repeat(3, -1), 2, "point", flow=True)


def test_noise_and_holes():
    gt = np.full((256, 256), 4.0, np.float32)
    a, va = degrade(gt, 2, "bicubic", noise_std=0.01, holes=0.2, seed=7)
    b, vb = degrade(gt, 2, "bicubic", noise_std=0.01, holes=0.2, seed=7)
    c, _ = degrade(gt, 2, "bicubic", noise_std=0.01, holes=0.2, seed=8)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(va, vb)
    assert not np.array_equal(a, c)
    assert abs((~va).mean() - 0.2) < 0.03
    assert (a[~va] == 0).all()
    rel = a[va] / 4.0 - 1
    assert 0.008 < rel.std() < 0.012  # relative noise
    # holes are blobs, not salt-and-pepper: most hole pixels have hole neighbours
    h = ~va
    inner = h[1:-1, 1:-1] & h[:-2, 1:-1] & h[2:, 1:-1] & h[1:-1, :-2] & h[1:-1, 2:]
    assert inner.sum() > 0.4 * h.sum()
    # flow noise is additive, in low-res pixels
    f = np.zeros((128, 128, 2), np.float32)
    lf, _ = degrade(f, 4, "bilinear_aa", flow=True, noise_std=0.5, seed=1)
    assert 0.45 < lf.std() < 0.55


def test_multichannel_generic():
    img = np.random.default_rng(0).uniform(0.1, 1, (32, 32, 3)).astype(np.float32)
    low, lv = degrade(img, 4, "bicubic")
    assert low.shape == (8, 8, 3) and lv.all()
    ref = np.asarray(Image.fromarray(img[..., 1]).resize((8, 8), Image.BICUBIC))
    np.testing.assert_array_equal(low[..., 1], ref)
