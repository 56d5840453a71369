"""The pipeline / Python API: factor and size rules, invalid pixels, NaN rule, flow scaling,
tiling, batching, models and options. Tiny images only."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import pacup
from pacup import pipeline as P
from pacup.errors import InputError, ModelNotAvailableError
from pacup.models import PacJointUpsample, RandomWeightsWarning, save_model


class Bilinear(nn.Module):
    """A stand-in network whose output is known: bilinear upsampling of the low input."""

    def __init__(self, factor):
        super().__init__()
        self.factor = factor
        self.receptive_radius = 2
        self.calls = []

    def forward(self, low, guide):
        self.calls.append((tuple(low.shape), tuple(guide.shape)))
        assert guide.shape[-2:] == (low.shape[-2] * self.factor, low.shape[-1] * self.factor)
        return F.interpolate(low, scale_factor=self.factor, mode="bilinear", align_corners=False)


def bilinear_np(a, f):
    t = torch.from_numpy(np.asarray(a, np.float64))[None, None]
    return F.interpolate(t, scale_factor=f, mode="bilinear", align_corners=False)[0, 0].numpy()


def rand_guide(h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def smooth_depth(h, w, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    return (2.0 + np.sin(yy / 3.0 + rng.uniform()) + 0.5 * np.cos(xx / 4.0)).astype(np.float32)




def lively(net):
    """He-initialised weights: PyTorch's default init makes a random network's output
    nearly constant (range ~0.02), too flat for equality tests to mean anything."""
    torch.manual_seed(net.factor)
    with torch.no_grad():
        for m in net.modules():
            if hasattr(m, "weight") and m.weight is not None and m.weight.dim() == 4:
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
    return net.eval()


@pytest.fixture(scope="module")
def net4():
    return lively(PacJointUpsample(4))


# ----------------------------------------------------------------------------- factor


@pytest.mark.parametrize("low,guide,factor", [
    ((60, 80), (480, 640), 8),
    ((94, 311), (375, 1242), 4),  # ceil-sized low-res input: guide 1 px short
    ((93, 310), (375, 1242), 4),  # floor-sized: guide 3 px long
    ((10, 10, 2), (20, 20, 3), 2),
    ((7, 9), (21, 27), 3),
    ((4, 5), (64, 80), 16),
])
def test_resolve_factor(low, guide, factor):
    assert pacup.resolve_factor(low, guide) == factor
    assert pacup.resolve_factor(low, guide, factor) == factor


@pytest.mark.parametrize("low,guide,factor,match", [
    ((60, 80), (30, 40), None, "guide is smaller than the input .input 60x80, guide 30x40"),
    ((60, 80), (480, 320), None, "size ratios differ"),
    ((60, 80), (60, 80), None, "not larger than the input"),
    ((60, 80), (80, 100), None, "not larger than the input"),
    ((2, 2), (64, 64), None, "factor 32 .* not supported"),
    ((60, 80), (480, 640), 4, "does not match x4 upsampling .input 60x80, guide 480x640; x4 gives 240x320"),
    ((10, 10), (48, 40), 4, "at most 3 pixels"),  # 8 px too long vertically
    ((10, 10), (40, 40), 1, "factor 1 is not supported"),
    ((10, 10), (40, 40), 2.5, "factor must be an integer"),
    ((0, 10), (40, 40), None, "non-empty"),
])
def test_resolve_factor_errors(low, guide, factor, match):
    with pytest.raises(InputError, match=match):
        pacup.resolve_factor(low, guide, factor)


def test_tolerance_is_factor_minus_one():
    assert pacup.resolve_factor((10, 10), (43, 37), 4) == 4
    with pytest.raises(InputError):
        pacup.resolve_factor((10, 10), (44, 40), 4)
    with pytest.raises(InputError):
        pacup.resolve_factor((10, 10), (40, 36), 4)


# ----------------------------------------------------------------------------- values


def test_depth_with_known_network_is_exact():
    low = smooth_depth(6, 7) * 1000  # millimetres
    out = pacup.upsample_depth(low, rand_guide(24, 28), model=Bilinear(4))
    assert out.dtype == np.float32 and out.shape == (24, 28)
    np.testing.assert_allclose(out, bilinear_np(low, 4), rtol=1e-6, atol=1e-3)


@pytest.mark.parametrize("gh,gw", [(22, 28), (27, 25), (24, 31)])
def test_pad_crop_rule(gh, gw):
    """The network sees f*low; the output is cropped or edge-padded to the guide's size."""
    low = smooth_depth(6, 7)
    model = Bilinear(4)
    out = pacup.upsample_depth(low, rand_guide(gh, gw), model=model)
    assert out.shape == (gh, gw)
    assert model.calls[0][1][-2:] == (24, 28)
    full = bilinear_np(low, 4)
    expect = np.pad(full, ((0, max(0, gh - 24)), (0, max(0, gw - 28))), mode="edge")[:gh, :gw]
    np.testing.assert_allclose(out, expect, rtol=1e-6, atol=1e-5)


def test_flow_is_scaled_by_the_factor_and_channels_normalised_separately():
    rng = np.random.default_rng(1)
    u = rng.uniform(-3, 3, (5, 6))
    v = rng.uniform(100, 101, (5, 6))  # a very different range: normalised on its own
    model = Bilinear(4)
    out = pacup.upsample_flow(np.stack([u, v], 2), rand_guide(20, 24), model=model)
    assert out.shape == (20, 24, 2) and out.dtype == np.float32
    np.testing.assert_allclose(out[..., 0], 4 * bilinear_np(u, 4), atol=1e-4)
    np.testing.assert_allclose(out[..., 1], 4 * bilinear_np(v, 4), rtol=1e-6, atol=1e-3)
    # A module other than PacJointUpsample sees one channel per sample.
    assert model.calls[0][0] == (2, 1, 5, 6)


def test_non_power_of_two_factor_runs_next_power_and_resamples():
    yy, xx = np.mgrid[0:12, 0:12]
    low = (1.0 + 0.5 * yy + 0.25 * xx).astype(np.float64)  # a plane: every method keeps it
    model = Bilinear(4)
    out = pacup.upsample_depth(low, rand_guide(36, 36), model=model)  # x3
    assert out.shape == (36, 36) and model.calls[0][1][-2:] == (48, 48)
    Y, X = np.mgrid[0:36, 0:36]
    plane = 1.0 + 0.5 * ((Y + 0.5) / 3 - 0.5) + 0.25 * ((X + 0.5) / 3 - 0.5)
    # PyTorch's antialiased resampler reproduces a plane only to ~1 % of one step (0.17).
    np.testing.assert_allclose(out[4:-4, 4:-4], plane[4:-4, 4:-4], atol=3e-3)
    flow = pacup.upsample_flow(np.stack([low, low], 2), rand_guide(36, 36), model=Bilinear(4))
    np.testing.assert_allclose(flow[4:-4, 4:-4, 0], 3 * plane[4:-4, 4:-4], atol=1e-2)


def test_float_guide_equals_uint8_guide(net4):
    low, g = smooth_depth(6, 6), rand_guide(24, 24)
    a = pacup.upsample_depth(low, g, model=net4)
    b = pacup.upsample_depth(low, g.astype(np.float32) / 255, model=net4)
    np.testing.assert_allclose(a, b, atol=1e-5)
    grey = pacup.upsample_depth(low, g[:, :, 0], model=net4)
    c = pacup.upsample_depth(low, np.repeat(g[:, :, :1], 3, 2), model=net4)
    np.testing.assert_array_equal(grey, c)


def test_read_only_guide_runs_without_a_warning(net4):
    # np.asarray of a PIL image is read-only; torch warns when such an array is wrapped.
    low, g = smooth_depth(6, 6), rand_guide(24, 24)
    ro = g.copy()
    ro.flags.writeable = False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = pacup.upsample_depth(low, ro, model=net4)
    np.testing.assert_array_equal(out, pacup.upsample_depth(low, g, model=net4))


# ----------------------------------------------------------------------------- invalid


def test_poisoned_invalid_pixels_never_affect_the_output(net4):
    low = smooth_depth(12, 12)
    valid = np.ones((12, 12), bool)
    valid[3:6, 4:9] = False
    valid[10:, :2] = False
    g = rand_guide(48, 48)
    outs = []
    for poison in (1e6, -1e6, np.nan, np.inf, 0.0):
        x = low.copy()
        x[~valid] = poison
        outs.append(pacup.upsample_depth(x, g, model=net4, valid=valid))
    for o in outs[1:]:
        np.testing.assert_array_equal(o, outs[0])
    assert np.isfinite(outs[0]).all()  # every hole is within reach of valid samples
    # ...while a change to a valid pixel next to the hole does show.
    x = low.copy()
    x[6, 6] += 0.5
    assert np.abs(pacup.upsample_depth(x, g, model=net4, valid=valid) - outs[0]).max() > 1e-3
    # Without a mask, 0 and NaN mark the holes: same result.
    x = low.copy()
    x[~valid] = 0
    np.testing.assert_array_equal(pacup.upsample_depth(x, g, model=net4), outs[0])
    x[~valid] = np.nan
    np.testing.assert_array_equal(pacup.upsample_depth(x, g, model=net4), outs[0])


def test_poisoned_invalid_flow(net4):
    rng = np.random.default_rng(2)
    low = rng.normal(0, 1, (10, 10, 2))
    valid = rng.random((10, 10)) > 0.3
    g = rand_guide(40, 40)
    outs = []
    for poison in (1e6, np.nan):
        x = low.copy()
        x[~valid] = poison
        outs.append(pacup.upsample_flow(x, g, model=net4, valid=valid))
    np.testing.assert_array_equal(outs[0], outs[1])


def expected_nan(valid, f, radius):
    """NaN rule written out: no valid low-res sample within ``radius`` (Chebyshev)."""
    h, w = valid.shape
    reach = np.zeros_like(valid)
    for y in range(h):
        for x in range(w):
            reach[y, x] = valid[max(0, y - radius) : y + radius + 1, max(0, x - radius) : x + radius + 1].any()
    return np.repeat(np.repeat(~reach, f, 0), f, 1)


def test_nan_only_where_no_information(net4):
    low = smooth_depth(24, 30)
    low[2:22, 3:27] = 0  # a big hole: its centre is farther than FILL_RADIUS from data
    out = pacup.upsample_depth(low, rand_guide(96, 120), model=net4)
    want = expected_nan(low != 0, 4, P.FILL_RADIUS)
    assert want.any() and (~want).any()
    np.testing.assert_array_equal(np.isnan(out), want)


def test_flow_nan_in_both_components(net4):
    low = np.ones((24, 24, 2))
    low[1:23, 1:23, 1] = np.nan  # one NaN component makes the pixel invalid
    out = pacup.upsample_flow(low, rand_guide(48, 48), factor=2, model=Bilinear(2))
    want = expected_nan(np.isfinite(low).all(2), 2, P.FILL_RADIUS)
    np.testing.assert_array_equal(np.isnan(out[..., 0]), want)
    np.testing.assert_array_equal(np.isnan(out[..., 1]), want)
    # The flow is constant 1 low-res px: every reached output is 2 full-res px.
    np.testing.assert_allclose(out[~want], 2.0)


def test_hole_filling_stays_within_the_valid_values():
    low = np.where(np.arange(16)[None, :] < 8, 1.0, 5.0) * np.ones((16, 1))
    low[5:11, 5:11] = 0
    out = pacup.upsample_depth(low, rand_guide(32, 32), model=Bilinear(2))
    assert np.isfinite(out).all()
    assert out.min() >= 1.0 - 1e-5 and out.max() <= 5.0 + 1e-5


def test_hole_filling_follows_the_guide():
    """A hole straddling a colour edge is filled from its own side of the edge."""
    low = np.where(np.arange(16)[None, :] < 8, 1.0, 5.0) * np.ones((16, 1))
    hole = np.zeros((16, 16), bool)
    hole[4:12, 6:10] = True
    low[hole] = 0
    g = np.zeros((32, 32, 3), np.uint8)
    g[:, 16:] = 255  # the colour edge sits where the depth edge is
    out = pacup.upsample_depth(low, g, model=Bilinear(2))
    # Interior of the hole, away from bilinear blending at the edge.
    np.testing.assert_allclose(out[10:22, 12:14], 1.0, atol=1e-3)
    np.testing.assert_allclose(out[10:22, 18:20], 5.0, atol=1e-3)


def test_no_valid_pixel_gives_all_nan():
    with pytest.warns(UserWarning, match="no valid pixel"):
        out = pacup.upsample_depth(np.zeros((4, 4)), rand_guide(16, 16), model=Bilinear(4))
    assert out.shape == (16, 16) and np.isnan(out).all()
    with pytest.warns(UserWarning, match="no valid pixel"):
        out = pacup.upsample_flow(np.full((4, 4, 2), np.nan), rand_guide(16, 16), model=Bilinear(4))
    assert out.shape == (16, 16, 2) and np.isnan(out).all()


def test_constant_input_stays_constant():
    out = pacup.upsample_depth(np.full((5, 5), 2.5), rand_guide(20, 20), model=Bilinear(4))
    np.testing.assert_allclose(out, 2.5)


# ----------------------------------------------------------------------------- tiling, batching


@pytest.mark.parametrize("factor,size,tile,pyramid",
                         [(4, (21, 26), 6, False), (2, (25, 19), 7, False), (16, (9, 11), 4, False),
                          (16, (9, 11), 4, True)])
def test_tiled_equals_untiled(factor, size, tile, pyramid):
    net = lively(PacJointUpsample(factor, guide_pyramid=pyramid))
    h, w = size
    low = smooth_depth(h, w, seed=factor)
    low[h // 2 : h // 2 + 3, 2:5] = 0
    g = rand_guide(h * factor, w * factor, seed=factor)
    whole = pacup.upsample_depth(low, g, model=net, tile=max(h, w))
    tiled = pacup.upsample_depth(low, g, model=net, tile=tile)
    np.testing.assert_allclose(tiled, whole, atol=1e-4, rtol=0)
    # The margin is what makes it exact: a too-small one shows seams well above the tolerance.
    net.receptive_radius = 1
    seams = pacup.upsample_depth(low, g, model=net, tile=tile)
    assert np.nanmax(np.abs(seams - whole)) > 2e-3
    net.receptive_radius = PacJointUpsample(factor, guide_pyramid=pyramid).receptive_radius
    flow = np.stack([low, -2 * low], 2)
    np.testing.assert_allclose(pacup.upsample_flow(flow, g, model=net, tile=tile),
                               pacup.upsample_flow(flow, g, model=net, tile=None), atol=1e-4, rtol=0)


def test_auto_tile_rule(monkeypatch):
    cpu = torch.device("cpu")
    assert P._auto_tile(60, 80, 8, 10, 1, cpu, torch.float32) == 80  # 480x640 fits: one tile
    t = P._auto_tile(270, 480, 8, 10, 1, cpu, torch.float32)  # 4K at x8 does not
    assert ((t + 20) * 8) ** 2 <= P._CPU_PIXEL_BUDGET < ((t + 21) * 8) ** 2
    # Two channels (flow) or images at once share the budget.
    assert P._auto_tile(270, 480, 8, 10, 2, cpu, torch.float32) < t
    # With a small budget, tiling really happens, and it matches the untiled result.
    monkeypatch.setattr(P, "_CPU_PIXEL_BUDGET", 40 * 40)
    assert P._auto_tile(12, 12, 4, 2, 1, cpu, torch.float32) == 6  # 40 / 4 - 2 * 2
    model = Bilinear(4)
    low = smooth_depth(12, 12)
    out = pacup.upsample_depth(low, rand_guide(48, 48), model=model)
    assert len(model.calls) == 4
    np.testing.assert_allclose(out, bilinear_np(low, 4), atol=1e-5)


def test_batch_equals_single(net4):
    lows = [smooth_depth(8, 9, seed=s) for s in range(3)] + [smooth_depth(6, 6)]
    lows[1][2:4, 2:4] = 0
    guides = [rand_guide(32, 36, seed=s) for s in range(3)] + [rand_guide(24, 24)]
    valid = [None, None, lows[2] > 2.0, None]
    batch = pacup.upsample_depth_batch(lows, guides, model=net4, valid=valid, batch_size=2)
    assert len(batch) == 4
    for lo, g, v, b in zip(lows, guides, valid, batch):
        single = pacup.upsample_depth(lo, g, model=net4, valid=v)
        assert b.shape == single.shape
        np.testing.assert_allclose(b, single, atol=1e-5, rtol=0)


def test_batch_groups_same_size_inputs():
    model = Bilinear(2)
    lows = [smooth_depth(4, 4, seed=s) for s in range(5)]
    pacup.upsample_depth_batch(lows, [rand_guide(8, 8)] * 5, model=model, batch_size=2)
    assert [c[0][0] for c in model.calls] == [2, 2, 1]


# ----------------------------------------------------------------------------- models, options


def test_default_model_without_weights(no_installed_weights):
    low, g = smooth_depth(4, 4), rand_guide(16, 16)
    with pytest.raises(ModelNotAvailableError, match="allow_random=True"):
        pacup.upsample_depth(low, g)
    with pytest.warns(RandomWeightsWarning):
        out = pacup.upsample_depth(low, g, allow_random=True)
    assert out.shape == (16, 16) and np.isfinite(out).all()
    with pytest.warns(RandomWeightsWarning):
        out = pacup.upsample_flow(np.ones((4, 4, 2)), g, model="flow-x4", allow_random=True)
    assert out.shape == (16, 16, 2)


def test_model_from_file(tmp_path, net4):
    path = tmp_path / "d4.safetensors"
    save_model(net4, path, {"task": "depth"})
    low, g = smooth_depth(5, 5), rand_guide(20, 20)
    np.testing.assert_array_equal(pacup.upsample_depth(low, g, model=path),
                                  pacup.upsample_depth(low, g, model=net4))
    with pytest.raises(InputError, match="is a depth model, not a flow model"):
        pacup.upsample_flow(np.ones((5, 5, 2)), g, model=str(path))
    with pytest.raises(InputError, match="upsamples x4, but this input needs a x8 network"):
        pacup.upsample_depth(low, rand_guide(40, 40), model=path)


def test_model_factor_mismatch_and_bad_model():
    with pytest.raises(InputError, match="upsamples x4, but this input needs a x2 network"):
        pacup.upsample_depth(smooth_depth(4, 4), rand_guide(8, 8), model=Bilinear(4))
    with pytest.raises(InputError, match="model must be"):
        pacup.upsample_depth(smooth_depth(4, 4), rand_guide(8, 8), model=42)


def test_user_module_left_as_it_was(net4):
    net4.train()
    try:
        pacup.upsample_depth(smooth_depth(4, 4), rand_guide(16, 16), model=net4)
        assert net4.training
    finally:
        net4.eval()
    double = PacJointUpsample(4).double()
    pacup.upsample_depth(smooth_depth(4, 4), rand_guide(16, 16), model=double)
    assert next(double.parameters()).dtype == torch.float64  # copied, not converted


def test_half_on_cpu_warns_and_runs_float32(net4):
    low, g = smooth_depth(5, 5), rand_guide(20, 20)
    with pytest.warns(UserWarning, match="half=True is ignored on the CPU"):
        a = pacup.upsample_depth(low, g, model=net4, half=True, device="cpu")
    np.testing.assert_array_equal(a, pacup.upsample_depth(low, g, model=net4, device="cpu"))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message when CUDA is missing")
def test_cuda_unavailable_is_an_input_error():
    with pytest.raises(InputError, match="CUDA is not available"):
        pacup.upsample_depth(smooth_depth(4, 4), rand_guide(16, 16), model=Bilinear(4), device="cuda")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu(net4):
    low, g = smooth_depth(20, 24), rand_guide(80, 96)
    low[5:8, 5:9] = 0
    cpu = pacup.upsample_depth(low, g, model=net4, device="cpu")
    gpu = pacup.upsample_depth(low, g, model=net4, device="cuda", tile=7)
    np.testing.assert_allclose(gpu, cpu, atol=1e-3, rtol=0)
    half = pacup.upsample_depth(low, g, model=net4, device="cuda", half=True)
    assert half.dtype == np.float32
    np.testing.assert_allclose(half, cpu, atol=2e-2 * np.ptp(low), rtol=0)
    assert next(net4.parameters()).device.type == "cpu"  # the caller's module was copied


@pytest.mark.parametrize("kwargs,match", [
    (dict(low=np.ones((4, 4, 3))), "2-D array"),
    (dict(guide=np.zeros((16, 16, 4), np.uint8)), "RGB image"),
    (dict(guide=np.zeros((16, 16, 3), np.uint16)), "uint8 or float"),
    (dict(guide=np.full((16, 16, 3), 200.0)), r"float guide must be in \[0, 1\]"),
    (dict(guide=np.full((16, 16, 3), np.nan)), "NaN"),
    (dict(low=np.array([["a"] * 4] * 4)), "numbers"),
    (dict(valid=np.ones((3, 4), bool)), "valid mask shape"),
    (dict(tile=0), "tile"),
    (dict(tile=2.5), "tile"),
    (dict(batch_size=0), "batch_size"),
    (dict(device="tpu"), "device"),
])
def test_bad_inputs(kwargs, match):
    args = dict(low=np.ones((4, 4)), guide=np.zeros((16, 16, 3), np.uint8), model=Bilinear(4))
    args.update(kwargs)
    with pytest.raises(InputError, match=match):
        pacup.upsample_depth(args.pop("low"), args.pop("guide"), **args)


def test_bad_flow_shape_and_list_lengths():
    with pytest.raises(InputError, match=r"\(H, W, 2\)"):
        pacup.upsample_flow(np.ones((4, 4)), rand_guide(16, 16), model=Bilinear(4))
    with pytest.raises(InputError, match="2 inputs but 1 guides"):
        pacup.upsample_depth_batch([np.ones((4, 4))] * 2, [rand_guide(16, 16)], model=Bilinear(4))


def test_errors_are_value_errors_and_exported():
    assert issubclass(pacup.InputError, ValueError) and issubclass(pacup.InputError, pacup.PacupError)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pacup.upsample_depth(np.ones((4, 4)), rand_guide(16, 16), model=Bilinear(4))  # no warnings


def test_flip_ensemble_is_the_mean_over_flips_and_tiles_exactly():
    torch.manual_seed(3)
    net = PacJointUpsample(4, "lite", residual=True).eval()
    rng = np.random.default_rng(5)
    low = rng.random((14, 18)).astype(np.float32) + 1.0
    flow = rng.normal(size=(14, 18, 2)).astype(np.float32)
    g = rng.integers(0, 256, (56, 72, 3), dtype=np.uint8)
    for fn, x in ((pacup.upsample_depth, low), (pacup.upsample_flow, flow)):
        got = fn(x, g, model=net, ensemble=True)
        flips = [fn(np.ascontiguousarray(x[::sy, ::sx]), np.ascontiguousarray(g[::sy, ::sx]), model=net)[::sy, ::sx]
                 for sy in (1, -1) for sx in (1, -1)]
        np.testing.assert_allclose(got, np.mean(flips, axis=0), atol=1e-5)
        assert np.abs(got - flips[0]).max() > 1e-4  # the flips do differ
        np.testing.assert_allclose(fn(x, g, model=net, ensemble=True, tile=5), got, atol=1e-6)
