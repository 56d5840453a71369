import itertools

import numpy as np
import pytest
from PIL import Image

from pacup.train import baselines as B
from pacup.train.degrade import degrade

RNG = np.random.default_rng(0)


def _step_scene(H=64, W=64, col=27):
    depth = np.ones((H, W), np.float32)
    depth[:, col:] = 2.0
    rgb = np.zeros((H, W, 3), np.uint8)
    rgb[:, col:] = 255
    return depth, rgb


def _rmse(a, b, border=6):
    s = (slice(border, -border),) * 2
    return float(np.sqrt(np.mean((a[s] - b[s]) ** 2)))


@pytest.mark.parametrize("name,align", list(itertools.product(["nearest", "bicubic", "jbu", "guided"], B.ALIGNS)))
def test_constant_stays_constant(name, align):
    low = np.full((6, 5), 3.25, np.float32)
    valid = np.ones((6, 5), bool)
    valid[2, 1:3] = False
    low[~valid] = 1e6  # garbage under invalid pixels must not leak
    guide = RNG.integers(0, 256, (24, 20, 3)).astype(np.uint8)
    out = B.BASELINES[name](low, guide, 4, valid, align=align)
    assert out.shape == (24, 20)
    np.testing.assert_allclose(out, 3.25, atol=1e-5)


def test_bicubic_is_pillow_where_all_valid():
    low = RNG.random((7, 9)).astype(np.float32)
    ref = np.asarray(Image.fromarray(low).resize((36, 28), Image.BICUBIC), np.float32)
    np.testing.assert_array_equal(B.bicubic_upsample(low, 4), ref)


@pytest.mark.parametrize("align", B.ALIGNS)
def test_bicubic_lattice_on_a_ramp(align):
    # A linear ramp is reproduced exactly by a=-0.5 cubic convolution away from the borders,
    # so the interior shows where each lattice puts the samples.
    s, w = 4, 12
    low = np.tile(np.arange(w, dtype=np.float32), (5, 1))
    out = B.bicubic_upsample(low, s, align=align)
    X = np.arange(w * s, dtype=np.float64)
    expect = X / s if align == "corner" else (X + 0.5) / s - 0.5
    inner = slice(3 * s, (w - 3) * s)
    np.testing.assert_allclose(out[2, inner], expect[inner], atol=1e-4)


def test_multichannel_is_per_channel():
    low = RNG.random((5, 6, 2)).astype(np.float32)
    guide = RNG.integers(0, 256, (20, 24, 3)).astype(np.uint8)
    for name in ("bicubic", "jbu", "guided"):
        out = B.BASELINES[name](low, guide, 4)
        for c in range(2):
            np.testing.assert_allclose(out[..., c], B.BASELINES[name](low[..., c], guide, 4), atol=1e-5)


def _brute_jbu(up, rgb, mask, sigma_s, sigma_r, r):
    H, W = up.shape
    out = np.zeros_like(up, dtype=np.float64)
    for y in range(H):
        for x in range(W):
            num = den = 0.0
            for dy in range(-r, r + 1):
                for dx in range(-r, r + 1):
                    yy, xx = y + dy, x + dx
                    if not (0 <= yy < H and 0 <= xx < W) or not mask[yy, xx]:
                        continue
                    d2 = ((rgb[y, x] - rgb[yy, xx]) ** 2).sum() / sigma_r**2 + (dy * dy + dx * dx) / sigma_s**2
                    k = np.exp(-0.5 * d2)
                    num += k * up[yy, xx]
                    den += k
            out[y, x] = num / den if den > 0 else up[y, x]
    return out


@pytest.mark.parametrize("init", ["bicubic", "nearest"])
def test_jbu_matches_brute_force(init):
    s = 4
    low = RNG.random((4, 5)).astype(np.float32)
    valid = np.ones((4, 5), bool)
    valid[1, 2] = False
    guide = RNG.integers(0, 256, (16, 20, 3)).astype(np.uint8)
    sigma_s, sigma_r, r = 2.0, 0.2, 3
    out = B.jbu_upsample(low, guide, s, valid, sigma_spatial=sigma_s, sigma_range=sigma_r, radius=r, init=init)
    up = (B.bicubic_upsample if init == "bicubic" else B.nearest_upsample)(low, s, valid)
    mask = np.repeat(np.repeat(valid, s, 0), s, 1)
    ref = _brute_jbu(up.astype(np.float64), guide.astype(np.float64) / 255, mask, sigma_s, sigma_r, r)
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)


def _brute_guided(p, I, r, eps, w):
    """Per-window weighted ridge regression, then the plain mean over covering windows."""
    H, W = p.shape
    n = I.shape[2]
    A = np.zeros((H, W, n))
    Bc = np.zeros((H, W))
    for y in range(H):
        for x in range(W):
            ys, xs = slice(max(0, y - r), y + r + 1), slice(max(0, x - r), x + r + 1)
            ww, pp, II = w[ys, xs].ravel(), p[ys, xs].ravel(), I[ys, xs].reshape(-1, n)
            if ww.sum() <= 1e-12:
                Bc[y, x] = pp.mean()
                continue
            mI = (ww[:, None] * II).sum(0) / ww.sum()
            mp = (ww * pp).sum() / ww.sum()
            cov = ((ww[:, None, None] * (II - mI)[:, :, None] * (II - mI)[:, None, :]).sum(0)) / ww.sum()
            cip = (ww[:, None] * (II - mI) * (pp - mp)[:, None]).sum(0) / ww.sum()
            a = np.linalg.solve(cov + eps * np.eye(n), cip)
            A[y, x], Bc[y, x] = a, mp - a @ mI
    q = np.zeros((H, W))
    for y in range(H):
        for x in range(W):
            ys, xs = slice(max(0, y - r), y + r + 1), slice(max(0, x - r), x + r + 1)
            q[y, x] = A[ys, xs].reshape(-1, n).mean(0) @ I[y, x] + Bc[ys, xs].mean()
    return q


@pytest.mark.parametrize("color", [False, True])
@pytest.mark.parametrize("weighted", [False, True])
def test_guided_filter_matches_brute_force(color, weighted):
    H, W, r, eps = 11, 13, 2, 0.01
    p = RNG.random((H, W))
    rgb = RNG.random((H, W, 3))
    w = (RNG.random((H, W)) > 0.3).astype(np.float64) if weighted else np.ones((H, W))
    if weighted:
        w[:6, :6] = 0  # some windows with no weight at all
    out = B.guided_filter(p.astype(np.float32), rgb, r, eps, weight=w if weighted else None, color=color)
    I = rgb if color else (0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2])[..., None]
    ref = _brute_guided(p.astype(np.float32).astype(np.float64), I, r, eps, w)
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-5)


def test_guided_filter_keeps_linear_functions_of_the_guide():
    # With eps -> 0, p = 2*I + 1 is reproduced exactly (a = 2, b = 1 in every window).
    I = RNG.random((16, 16))
    out = B.guided_filter((2 * I + 1).astype(np.float32), I, 2, 1e-9)
    np.testing.assert_allclose(out, 2 * I + 1, atol=1e-4)


@pytest.mark.parametrize("name", ["jbu", "guided"])
@pytest.mark.parametrize("factor", [4, 8])
def test_edges_better_than_bicubic(name, factor):
    depth, rgb = _step_scene()
    low, lv = degrade(depth, factor, "bicubic")
    bic = _rmse(B.bicubic_upsample(low, factor, lv), depth)
    got = _rmse(B.BASELINES[name](low, rgb, factor, lv), depth)
    assert got < 0.8 * bic, (got, bic)


def test_invalid_values_are_never_read():
    depth, rgb = _step_scene()
    low, lv = degrade(depth, 8, "bicubic")
    lv = lv.copy()
    lv[3:5, 2:4] = False
    a, b = low.copy(), low.copy()
    a[~lv], b[~lv] = 0.0, 1e6
    for name in ("nearest", "bicubic", "jbu", "guided"):
        oa, ob = B.BASELINES[name](a, rgb, 8, lv), B.BASELINES[name](b, rgb, 8, lv)
        np.testing.assert_array_equal(oa, ob)
        assert np.isfinite(oa).all() and oa.min() > 0.5 and oa.max() < 2.5


def test_fill_invalid_keeps_valid_and_fills_in_range():
    low = RNG.random((9, 7)).astype(np.float32) + 1
    v = RNG.random((9, 7)) > 0.4
    out = B.fill_invalid(np.where(v, low, np.nan), v)
    np.testing.assert_array_equal(out[v], low[v])
    assert np.isfinite(out).all()
    assert out[~v].min() >= low[v].min() and out[~v].max() <= low[v].max()
    assert (B.fill_invalid(low, np.zeros_like(v)) == 0).all()


def test_bad_arguments():
    low = np.ones((4, 4), np.float32)
    with pytest.raises(ValueError):
        B.bicubic_upsample(low, 4, align="middle")
    with pytest.raises(ValueError):
        B.jbu_upsample(low, np.zeros((15, 16, 3), np.uint8), 4)
    with pytest.raises(ValueError):
        B.jbu_upsample(low, np.zeros((16, 16, 3), np.uint8), 4, init="linear")
    with pytest.raises(ValueError):
        B.bicubic_upsample(low, 2.5)
    with pytest.raises(ValueError):
        B.bicubic_upsample(low, 4, low_valid=np.ones((3, 4), bool))
