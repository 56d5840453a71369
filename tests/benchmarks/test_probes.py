"""The registration and hole probes whose figures the model card cites (benchmarks/)."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from pacup.train.folders import Sample

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


def _load(name):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _step_scene(rgb_offset: int) -> Sample:
    """A depth step at column 40 (near 1 m, far 3 m) and an RGB edge at 40 + rgb_offset,
    plus RGB texture with no depth edge (stripes in the near half)."""
    h, w = 64, 96
    gt = np.where(np.arange(w)[None, :] < 40, 1.0, 3.0).astype(np.float32).repeat(h, 0)
    lum = np.where(np.arange(w)[None, :] < 40 + rgb_offset, 60, 200).repeat(h, 0).astype(np.float64)
    lum[::8, :30] += 40  # texture edges away from the depth edge
    guide = np.repeat(lum[..., None], 3, axis=2).astype(np.uint8)
    return Sample("step", "depth", guide, gt, np.ones((h, w), bool), "m")


@pytest.mark.parametrize("offset", [0, 2, -3])
def test_edge_gradient_peaks_where_the_guide_edge_meets_the_depth_edge(offset):
    probe = _load("guide_shift")
    s = _step_scene(offset)
    shifts = range(-5, 6)
    scores = [probe.edge_gradient(s, 0, dx) for dx in shifts]
    # content moves right for positive dx: an RGB edge `offset` px right needs dx = -offset
    assert list(shifts)[int(np.argmax(scores))] == -offset
    assert max(scores) > 2 * probe.edge_gradient(s, 0, -offset + 4)


def test_hole_distance_is_chebyshev_and_capped():
    probe = _load("hole_error")
    valid = np.ones((9, 11), bool)
    valid[4, 5] = False
    d = probe.hole_distance(valid, limit=3)
    yy, xx = np.mgrid[:9, :11]
    cheb = np.maximum(abs(yy - 4), abs(xx - 5))
    np.testing.assert_array_equal(d, np.minimum(cheb, 4))
    assert probe.hole_distance(np.ones((4, 4), bool), limit=2).min() == 3  # no hole: all capped


def test_flow_bands_marks_both_sides_of_a_motion_boundary_and_scales_8_bit_guides():
    probe = _load("flow_bands")
    flow = np.zeros((6, 8, 2), np.float32)
    flow[:, 5:, 0] = 3.0  # a 3 px jump between columns 4 and 5
    flow[:, :2, 1] = 0.5  # a jump below the threshold
    b = probe.motion_boundaries(flow, jump=1.0)
    assert b[:, [4, 5]].all() and b.sum() == 12
    guide = np.zeros((6, 8, 3), np.uint8)
    guide[:, 3:] = 40  # a luminance step of 40 / 255: an edge at 0.05 but not at 0.2
    for g in (guide, guide.astype(np.float32) / 255):
        assert probe.guide_edges(g, 0.05)[:, [2, 3]].all() and not probe.guide_edges(g, 0.2).any()


def test_flow_bands_probe_guides_keep_or_replace_the_rgb_as_documented():
    probe = _load("flow_bands")
    flow = np.zeros((16, 24, 2), np.float32)
    flow[:, 12:, 0] = 4.0  # motion boundary between columns 11 and 12
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (16, 24, 3)).astype(np.uint8)
    assert probe.probe_guide(rgb, flow) is rgb
    oracle = probe.probe_guide(rgb, flow, "oracle")
    assert (oracle[:, :12] == oracle[0, 0]).all() and (oracle[:, 12:] == oracle[0, 12]).all()
    assert not (oracle[0, 0] == oracle[0, 12]).all()
    blend = probe.probe_guide(rgb, flow, "blend").astype(int)
    assert np.abs(blend - (rgb.astype(int) + oracle) / 2).max() <= 1
    near = probe.probe_guide(rgb, flow, "near", radius=3)  # RGB kept within 4 px: columns 7..16
    assert (near[:, 7:17] == rgb[:, 7:17]).all() and not (near[:, :5] == rgb[:, :5]).all()
    flat = probe.probe_guide(rgb, flow, "rgb", contrast=0.5).astype(float)
    assert flat.std() < 0.55 * rgb.std()
    with pytest.raises(ValueError, match="mode"):
        probe.probe_guide(rgb, flow, "cats")


def test_edge_profile_is_near_zero_for_a_one_pixel_step_and_grows_with_blur():
    probe = _load("edge_profile")
    from pacup.train.synth import camera_blur

    depth = np.where(np.arange(32)[None, :] < 16, 1.0, 2.0).astype(np.float32).repeat(16, 0)
    guide = np.zeros((16, 32, 3), np.uint8)
    guide[:, 16:] = 180
    guide[::4, :8] = 30  # texture away from the boundary
    pairs = probe.boundary_pairs(depth, np.ones_like(depth, bool), "depth")
    assert pairs[:, 15].all() and pairs.sum() == 16
    sharp = probe.profile(guide, pairs)
    soft = probe.profile(camera_blur(guide, 1.0), pairs)
    assert sharp[2] == 1.0 and max(sharp[1], sharp[3]) < 0.01
    assert 0.3 < soft[1] < 1 and 0.3 < soft[3] < 1 and soft[0] < soft[1]
    # Contrast: the boundary's gradient (a 180-level step halved by central differences),
    # and none where the guide is flat (the texture rows are a quarter of the far pixels).
    on, away, strong = probe.contrast(guide, pairs)
    assert on == pytest.approx(90 / 255, rel=1e-4) and away == 0.0
    # The texture's edges (steps of 30 levels, 15 / 255 > 0.05 by central differences) are
    # the strong far pixels; without the texture there are none.
    assert 0 < strong < 0.5
    plain = guide.copy()
    plain[:, :8] = 0
    assert probe.contrast(plain, pairs)[2] == 0.0


def test_hole_error_flatten_blurs_only_the_texture_away_from_depth_edges():
    probe = _load("hole_error")
    s = _step_scene(0)
    out = probe.flatten_texture(s.guide, s.gt, s.valid, radius=3)
    assert out.dtype == np.uint8 and out.shape == s.guide.shape
    # Within 3 px of the depth edge (columns 39 / 40) the guide is untouched ...
    assert np.array_equal(out[:, 36:44], s.guide[:, 36:44])
    # ... the texture stripes far from it are smoothed away.
    far = slice(4, 26)
    assert np.ptp(out[8:56, far, 0].astype(int)) < 0.5 * np.ptp(s.guide[8:56, far, 0].astype(int))


def test_phase_spread_crops_every_array_alike_and_scores_each_phase():
    probe = _load("phase_spread")
    assert probe.phase_offsets(4, 8) == [(0, 0), (0, 4), (4, 0), (4, 4)]
    assert probe.phase_offsets(2, 4) == [(0, 0), (0, 2)]
    with pytest.raises(ValueError, match="n must be"):
        probe.phase_offsets(0, 8)
    s = _step_scene(0)
    m = probe.shifted(s, 3, 5)
    assert m.name == "step@3,5" and m.noc is None
    np.testing.assert_array_equal(m.gt, s.gt[3:, 5:])
    np.testing.assert_array_equal(m.guide, s.guide[3:, 5:])
    assert m.valid.shape == m.gt.shape == (61, 91)
    # Every phase is scored; the depth step falls elsewhere in the low-res grid at each, so
    # the nearest-neighbour error changes with the phase.
    offsets = probe.phase_offsets(3, 4)
    base = probe.phase_scores("bicubic", [s], offsets, 4, "B")
    near = probe.phase_scores("nearest", [s], offsets, 4, "B")
    assert len(base) == len(near) == 3 and all(v > 0 for v in base)
    assert len(set(round(v, 6) for v in near)) > 1


def _random_net(factor, seed=0):
    import torch

    from pacup.models.network import PacJointUpsample

    torch.manual_seed(seed)
    net = PacJointUpsample(factor, "lite", residual=True)
    with torch.no_grad():  # a non-zero residual, so that flips and chains change the output
        for p in net.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return net.eval()


def test_ensemble_passes_all_four_flips_is_the_pipelines_ensemble_and_one_is_a_plain_pass():
    probe = _load("ensemble_passes")
    from pacup.pipeline import upsample_depth

    rng = np.random.default_rng(0)
    low = rng.uniform(1, 3, (12, 16)).astype(np.float32)
    guide = rng.integers(0, 256, (48, 64, 3)).astype(np.uint8)
    net = _random_net(4)
    plain = upsample_depth(low, guide, 4, model=net, device="cpu")
    ens = upsample_depth(low, guide, 4, model=net, device="cpu", ensemble=True)
    assert np.abs(plain - ens).max() > 1e-4  # the flips do differ
    one = upsample_depth(low, guide, 4, model=probe.flip_average(net, ("id",)), device="cpu")
    four = upsample_depth(low, guide, 4, model=probe.flip_average(net, tuple(probe.FLIPS)), device="cpu")
    np.testing.assert_allclose(one, plain, rtol=0, atol=1e-6)
    np.testing.assert_allclose(four, ens, rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match="subset"):
        probe.flip_average(net, ("up",))


def test_cascade_runs_each_step_on_the_guide_at_its_size_and_checks_the_factor():
    probe = _load("cascade")
    from PIL import Image

    from pacup.pipeline import upsample_depth

    rng = np.random.default_rng(1)
    low = rng.uniform(1, 3, (6, 8)).astype(np.float32)
    guide = rng.integers(0, 256, (48, 64, 3)).astype(np.uint8)
    a, b = _random_net(2, 0), _random_net(4, 1)
    run = probe.chain_method([a, b], [2, 4])
    out = run(low, np.ones_like(low, bool), guide, 8, None, False)
    mid_guide = np.asarray(Image.fromarray(guide).resize((16, 12), Image.BOX))
    mid = upsample_depth(low, mid_guide, 2, model=a, device="cpu")
    want = upsample_depth(mid, guide, 4, model=b, device="cpu")
    assert out.shape == (48, 64)
    np.testing.assert_allclose(out, want, rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="x8"):
        run(low, np.ones_like(low, bool), guide[:24, :32], 4, None, False)


def test_cascade_takes_one_classical_step_after_a_network():
    probe = _load("cascade")
    from PIL import Image

    from pacup.pipeline import upsample_depth
    from pacup.train.baselines import bicubic_upsample, jbu_upsample

    rng = np.random.default_rng(2)
    low = rng.uniform(1, 3, (6, 8)).astype(np.float32)
    guide = rng.integers(0, 256, (48, 64, 3)).astype(np.uint8)
    net = _random_net(4, 0)
    out = probe.chain_method([net, "jbu"], [4, 2])(low, np.ones_like(low, bool), guide, 8, None, False)
    half = np.asarray(Image.fromarray(guide).resize((32, 24), Image.BOX))
    mid = upsample_depth(low, half, 4, model=net, device="cpu")
    want = jbu_upsample(mid, guide, 2, np.isfinite(mid))
    assert out.shape == (48, 64)
    np.testing.assert_allclose(out, want, rtol=0, atol=1e-6)
    # flow: the classical step scales the vectors into its output pixels, as a network does
    flow = rng.normal(0, 1, (6, 8, 2)).astype(np.float32)
    got = probe.chain_method(["bicubic"], [8])(flow, np.ones((6, 8), bool), guide, 8, None, True)
    np.testing.assert_allclose(got, bicubic_upsample(flow, 8, np.ones((6, 8), bool)) * 8, rtol=0, atol=1e-5)


def test_kernel_usage_measures_k_between_pixels_two_apart():
    import torch

    from pacup.models import PacJointUpsample

    probe = _load("kernel_usage")
    f = torch.zeros(1, 2, 6, 8)
    f[:, 0, :, 4:] = 2.0  # a vertical edge of height 2 in one channel, nothing else
    k = probe.pair_kernels(f)
    # horizontal pairs: 6 rows x 6 pairs, of which 2 per row straddle the edge (K = e^-2);
    # vertical pairs: 4 x 8, none straddles it (K = 1)
    assert k.numel() == 36 + 32
    assert torch.isclose(k, torch.tensor(float(np.exp(-2.0)))).sum() == 12 and (k == 1).sum() == 56
    # A flat guide gives K = 1 at every stage of a network, whatever its weights.
    torch.manual_seed(0)
    net = PacJointUpsample(8, "lite").eval()
    flat = np.full((32, 40, 3), 128, np.uint8)
    stages = probe.stage_kernels(net, [flat, flat])
    assert len(stages) == 3 and all(torch.allclose(s, torch.ones(())) for s in stages)
    # A textured guide does not.
    rng = np.random.default_rng(0)
    assert probe.stage_kernels(net, [rng.integers(0, 256, (32, 40, 3), dtype=np.uint8)])[-1].min() < 1
