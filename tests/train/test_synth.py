import math

import numpy as np
import pytest
import torch

from pacup.train import textures as T
from pacup.train.degrade import degrade
from pacup.train.synth import (
    MISALIGN_MAX_PX, Box, Cylinder, DepthScene, FlowLayer, Room, Shape, Sphere, SyntheticDepthDataset,
    SyntheticFlowDataset, Tex, affine_about, make_depth_scene, make_flow_scene,
    render_depth_scene, render_flow_layers, shift_image,
)


def _flat_tex(value=0.5):
    return Tex(np.full((3, 4, 4), value, np.float32), tpm=10.0)


def _room(D=6.0, cam_h=1.2):
    return Room([-3, cam_h - 2.8, -1], [3, cam_h, D], _flat_tex())


# ------------------------------------------------------------------------- depth scenes


def test_depth_scene_deterministic_and_seed_dependent():
    a = make_depth_scene(3, 64, 80)
    b = make_depth_scene(3, 64, 80)
    c = make_depth_scene(4, 64, 80)
    np.testing.assert_array_equal(a["rgb"], b["rgb"])
    np.testing.assert_array_equal(a["depth"], b["depth"])
    assert not np.array_equal(a["depth"], c["depth"])
    assert not np.array_equal(a["rgb"], c["rgb"])


@pytest.mark.parametrize("seed", range(6))
def test_depth_scene_shapes_dtypes_ranges(seed):
    o = make_depth_scene(seed, 48, 72)
    assert o["rgb"].shape == (48, 72, 3) and o["rgb"].dtype == np.uint8
    d = o["depth"]
    assert d.shape == (48, 72) and d.dtype == np.float32
    assert np.isfinite(d).all() and (d > 0.2).all() and (d < 12).all()
    assert o["rgb"].std() > 3  # not a blank image


def test_plane_depth_is_exact_z_depth():
    D, cam_h, f, H, W = 6.0, 1.2, 50.0, 40, 40
    sc = DepthScene(f=f, R_cam=np.eye(3), prims=[_room(D, cam_h)])
    d = render_depth_scene(sc, H, W)["depth"]
    np.testing.assert_allclose(d[H // 2 - 2, W // 2], D, rtol=1e-6)  # back wall: z-depth = D
    # floor (y = cam_h, y down): z = cam_h / ((i + 0.5 - H/2) / f)
    i = H - 1
    np.testing.assert_allclose(d[i, W // 2], min(D, cam_h * f / (i + 0.5 - H / 2)), rtol=1e-5)


def test_zbuffer_occlusion_sphere_box_order_independent():
    f, H, W = 60.0, 48, 48
    wall = _room(6.0)
    sphere = Sphere([0, 0, 3.0], 0.5, _flat_tex(0.8))
    box = Box([0.3, 0.3, 2.0], np.eye(3), [0.2, 0.2, 0.2], _flat_tex(0.2))
    d1 = render_depth_scene(DepthScene(f=f, R_cam=np.eye(3), prims=[wall, sphere, box]), H, W)
    d2 = render_depth_scene(DepthScene(f=f, R_cam=np.eye(3), prims=[box, sphere, wall]), H, W)
    np.testing.assert_array_equal(d1["depth"], d2["depth"])
    np.testing.assert_array_equal(d1["rgb"], d2["rgb"])
    d = d1["depth"]
    c = d[H // 2 - 1, W // 2 - 1]  # pixel centre 0.5 px off the optical axis
    assert c < 6.0 and abs(c - 2.5) < 0.01  # sphere front, not the wall behind it
    # the box occludes part of the sphere: its front face is at z = 1.8
    u = int(0.3 / 2.0 * f + W / 2)
    assert d[u, u] == pytest.approx(1.8, rel=1e-5)
    # sphere silhouette: a pixel whose ray misses the sphere sees the wall
    assert d[H // 2, W // 2 + int(0.6 / 3.0 * f) + 2] == pytest.approx(6.0, rel=1e-5)


@pytest.mark.parametrize("seed", range(4))
def test_screen_rect_culling_is_conservative(seed, monkeypatch):
    import pacup.train.synth as S
    o = make_depth_scene(seed, 64, 64, return_scene=True)
    monkeypatch.setattr(S, "_screen_rect", lambda scene, bound, h, w: (0, h, 0, w))
    sc = o["scene"]
    sc.noise_std = 0.0
    full = render_depth_scene(sc, 64, 64)
    np.testing.assert_array_equal(full["depth"], o["depth"])


def test_thin_cylinder_is_visible_in_depth():
    f, H, W = 100.0, 64, 64
    z = 3.0
    r = 1.5 * z / (2 * f)  # 1.5 px wide
    pole = Cylinder([0.0, 0.0, z], np.eye(3), r, 1.0, _flat_tex(0.9))
    d = render_depth_scene(DepthScene(f=f, R_cam=np.eye(3), prims=[_room(6.0), pole]), H, W)["depth"]
    hit = np.abs(d - z) < 0.05
    cols = np.nonzero(hit.any(0))[0]
    assert 1 <= len(cols) <= 3
    assert hit[:, cols].sum(0).max() > 40  # a continuous vertical line


def test_generation_without_photographs(monkeypatch):
    monkeypatch.setattr(T, "_skimage_data_dir", lambda: None)
    T.clear_cache()
    try:
        assert T.photos() == []
        o = make_depth_scene(5, 32, 32)
        assert np.isfinite(o["depth"]).all()
        f = make_flow_scene(5, 32, 32)
        assert f["img0"].shape == (32, 32, 3)
    finally:
        T.clear_cache()


def test_photos_load_offline_when_scikit_image_present():
    pytest.importorskip("skimage")
    ph = T.photos()
    assert len(ph) >= 10
    for img, grey in ph:
        assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3
        assert max(img.shape[:2]) <= 512


def test_texture_sampling_mirror_and_bilinear():
    tex = np.arange(12, dtype=np.float32).reshape(1, 3, 4)
    x = np.array([0, 1.5, 3, 4, 7, -1, 8], np.float32)
    y = np.zeros_like(x)
    out = T.sample(tex, x, y)[0]
    # mirrored repeat: columns ... 0 1 2 3 | 3 2 1 0 | 0 1 ...
    np.testing.assert_allclose(out, [0, 1.5, 3, 3, 0, 0, 0])


# -------------------------------------------------------------------------- flow scenes


def _bg_layer(motion):
    rng = np.random.default_rng(0)
    tex = rng.random((32, 32, 3)).astype(np.float32)
    return FlowLayer(tex, np.array([[0.7, 0.2, 3.0], [-0.1, 0.9, 5.0]]), np.asarray(motion, float))


def test_flow_scene_deterministic_shapes():
    a = make_flow_scene(11, 48, 64)
    b = make_flow_scene(11, 48, 64)
    c = make_flow_scene(12, 48, 64)
    for k in ("img0", "img1", "flow", "valid", "inside"):
        np.testing.assert_array_equal(a[k], b[k])
    assert not np.array_equal(a["flow"], c["flow"])
    assert a["img0"].shape == (48, 64, 3) and a["img0"].dtype == np.uint8
    assert a["img1"].shape == (48, 64, 3) and a["img1"].dtype == np.uint8
    assert a["flow"].shape == (48, 64, 2) and a["flow"].dtype == np.float32
    assert a["valid"].dtype == bool and a["valid"].shape == (48, 64)
    assert np.abs(a["flow"]).max() < 60


def test_single_translation_layer():
    tx, ty = 5, -3
    o = render_flow_layers([_bg_layer([[1, 0, tx], [0, 1, ty]])], 40, 50)
    assert (o["flow"][..., 0] == tx).all() and (o["flow"][..., 1] == ty).all()
    assert o["valid"].all()
    # img1 warped back to img0 matches exactly where the target lies in the frame
    np.testing.assert_array_equal(o["img1"][0 + ty + 3:40 + ty, tx:50], o["img0"][3:40, 0:50 - tx])
    ins = o["inside"]
    assert ins[3:, :50 - tx].all() and not ins[:3].any() and not ins[:, 50 - tx:].any()


def test_occlusion_valid_mask_two_layers():
    H, W = 48, 48
    t = np.array([6.0, 2.0])
    disk = Shape("ellipse", np.array([20.0, 24.0]), np.array([8.0, 8.0]), 0.0)
    fg = FlowLayer(np.full((4, 4, 3), 0.9, np.float32), np.eye(2, 3), affine_about((20, 24), shift=t), disk)
    o = render_flow_layers([_bg_layer(np.eye(2, 3)), fg], H, W)
    yy, xx = np.mgrid[0:H, 0:W].astype(float)
    in0 = (xx - 20) ** 2 + (yy - 24) ** 2 <= 64
    in1 = (xx - 20 - t[0]) ** 2 + (yy - 24 - t[1]) ** 2 <= 64  # disk's position in img1
    np.testing.assert_allclose(o["flow"][in0], np.broadcast_to(t, (in0.sum(), 2)), atol=1e-5)
    assert (o["flow"][~in0] == 0).all()
    # background pixels covered by the moved disk are occluded; nothing else is
    np.testing.assert_array_equal(o["valid"], ~(in1 & ~in0))
    assert (o["img1"][in1] == o["img1"][in1][0]).all()  # flat disk colour in img1


def _reference_render(layers, H, W):
    """Naive per-pixel reference of render_flow_layers (no bounding boxes)."""
    from pacup.train.synth import affine_inverse
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    X, Y = xx.ravel(), yy.ravel()
    top0 = np.full(H * W, -1)
    top1 = np.full(H * W, -1)
    for k, L in enumerate(layers):
        top0[L.contains(X, Y)] = k
        A = affine_inverse(L.motion)
        xs = (A[0, 0] * X + A[0, 1] * Y + A[0, 2]).astype(np.float32)
        ys = (A[1, 0] * X + A[1, 1] * Y + A[1, 2]).astype(np.float32)
        top1[L.contains(xs, ys)] = k
    flow = np.zeros((H * W, 2))
    valid = np.zeros(H * W, bool)
    img0 = np.zeros((3, H * W), np.float32)
    for k, L in enumerate(layers):
        i = np.nonzero(top0 == k)[0]
        img0[:, i] = L.colour(X[i], Y[i])
        M = np.asarray(L.motion)
        x1 = M[0, 0] * X[i] + M[0, 1] * Y[i] + M[0, 2]
        y1 = M[1, 0] * X[i] + M[1, 1] * Y[i] + M[1, 2]
        flow[i, 0], flow[i, 1] = x1 - X[i], y1 - Y[i]
        occ = np.zeros(len(i), bool)
        for j in range(k + 1, len(layers)):
            A = affine_inverse(layers[j].motion)
            occ |= layers[j].contains(A[0, 0] * x1 + A[0, 1] * y1 + A[0, 2],
                                      A[1, 0] * x1 + A[1, 1] * y1 + A[1, 2])
        valid[i] = ~occ
    img0 = (np.clip(img0, 0, 1) * 255 + 0.5).astype(np.uint8).T.reshape(H, W, 3)
    return top0.reshape(H, W), top1.reshape(H, W), flow.reshape(H, W, 2), valid.reshape(H, W), img0


@pytest.mark.parametrize("seed", range(4))
def test_flow_renderer_matches_naive_reference(seed):
    H, W = 64, 80
    o = make_flow_scene(seed, H, W, return_layers=True)
    top0, top1, flow, valid, img0 = _reference_render(o["layers"], H, W)
    np.testing.assert_allclose(o["flow"], flow, atol=1e-4)
    np.testing.assert_array_equal(o["valid"], valid)
    np.testing.assert_array_equal(o["img0"], img0)
    assert (top1 >= 0).all() and (top0 >= 0).all()


def test_occlusion_outside_the_frame_counts():
    # a static background and a disk that moves right, partly out of the frame: background
    # pixels near the right edge that the disk covers in img1 are occluded even though
    # the disk's img1 position is partly outside the image
    H, W = 32, 32
    disk = Shape("ellipse", np.array([28.0, 16.0]), np.array([6.0, 6.0]), 0.0)
    fg = FlowLayer(np.full((4, 4, 3), 0.9, np.float32), np.eye(2, 3),
                   affine_about((28, 16), shift=(3.0, 0.0)), disk)
    bg = _bg_layer([[1, 0, 2.0], [0, 1, 0]])  # background moves right by 2 px
    o = render_flow_layers([bg, fg], H, W)
    _, _, _, valid, _ = _reference_render([bg, fg], H, W)
    np.testing.assert_array_equal(o["valid"], valid)
    yy, xx = np.mgrid[0:H, 0:W].astype(float)
    bgpix = (xx - 28) ** 2 + (yy - 16) ** 2 > 36
    hidden = bgpix & ((xx + 2 - 31) ** 2 + (yy - 16) ** 2 <= 36)
    assert hidden.any() and not o["valid"][hidden].any()
    assert (~o["inside"][hidden & (xx + 2 > W - 1)]).all()


def test_random_flow_scene_warp_consistency():
    for seed in range(3):
        o = make_flow_scene(seed, 96, 96)
        yy, xx = np.mgrid[0:96, 0:96].astype(np.float32)
        m = o["valid"] & o["inside"]
        x1 = (xx + o["flow"][..., 0])[m]
        y1 = (yy + o["flow"][..., 1])[m]
        back = T.sample(T.to_planar(o["img1"].astype(np.float32)), x1, y1).T
        err = np.abs(back - o["img0"][m].astype(np.float32)).mean()
        assert err < 4.0, (seed, err)
        assert 0.0 < (~o["valid"]).mean() < 0.5


# ----------------------------------------------------------------------------- datasets


def test_depth_dataset_items():
    ds = SyntheticDepthDataset(factor=4, crop=64, method="bicubic", length=5, seed=1)
    it = ds[2]
    assert set(it) == {"guide", "low", "low_valid", "target", "target_valid"}
    assert it["guide"].shape == (3, 64, 64) and it["low"].shape == (1, 16, 16)
    assert it["low_valid"].shape == (1, 16, 16) and it["target"].shape == (1, 64, 64)
    assert it["target_valid"].shape == (1, 64, 64)
    for v in it.values():
        assert v.dtype == torch.float32
    assert 0 <= it["guide"].min() and it["guide"].max() <= 1
    assert (it["target"] > 0).all() and (it["target_valid"] == 1).all()
    ref, _ = degrade(it["target"][0].numpy(), 4, "bicubic")
    np.testing.assert_array_equal(it["low"][0].numpy(), ref)
    again = SyntheticDepthDataset(factor=4, crop=64, method="bicubic", length=5, seed=1)[2]
    for k in it:
        assert torch.equal(it[k], again[k])
    assert not torch.equal(ds[3]["target"], it["target"])
    assert not torch.equal(SyntheticDepthDataset(4, 64, length=5, seed=2)[2]["target"], it["target"])
    with pytest.raises(IndexError):
        ds[5]
    big = SyntheticDepthDataset(4, 64, length=2, oversize=1.5)  # 96 px scene, random crop
    assert big.gen == 96 and big[0]["target"].shape == (1, 64, 64)
    with pytest.raises(ValueError):
        SyntheticDepthDataset(4, 64, method="bogus")


def test_depth_dataset_noise_and_holes():
    it = SyntheticDepthDataset(4, 64, method="point", length=2, noise_std=0.01, holes=0.2)[0]
    lv = it["low_valid"][0].numpy().astype(bool)
    assert 0.1 < (~lv).mean() < 0.3
    assert (it["low"][0].numpy()[~lv] == 0).all()
    rel = it["low"][0].numpy()[lv] / it["target"][0].numpy()[::4, ::4][lv] - 1
    assert 0.005 < rel.std() < 0.02


def test_stereo_occlusion_band_beside_a_near_object():
    from pacup.train.synth import stereo_occlusion

    z = np.full((4, 60), 10.0)  # background: disparity 2 px when the nearest point has 10
    z[:, 30:40] = 2.0  # a near object: disparity 10 px
    occ = stereo_occlusion(z, 10.0)
    # Seen from a camera to the right, the object covers the 8 px of background left of it.
    expected = np.zeros(60, bool)
    expected[22:30] = True
    np.testing.assert_array_equal(occ, np.broadcast_to(expected, occ.shape))
    # From a camera to the left, the band is on the object's right.
    right = np.zeros(60, bool)
    right[40:48] = True
    np.testing.assert_array_equal(stereo_occlusion(z, 10.0, right_view=True)[0], right)
    # A slanted plane occludes nothing.
    assert not stereo_occlusion(np.linspace(2, 9, 60)[None].repeat(3, 0), 12.0).any()


def test_depth_dataset_occlusion():
    clean = SyntheticDepthDataset(4, 64, length=6, seed=3)
    occl = SyntheticDepthDataset(4, 64, length=6, seed=3, occlusion=1.0)
    lost = []
    for i in range(6):
        a, b = clean[i], occl[i]
        assert torch.equal(a["guide"], b["guide"]) and torch.equal(a["target"] * b["target_valid"], b["target"])
        tv = b["target_valid"][0].numpy().astype(bool)
        lost.append((~tv).mean())
        ref, ref_v = degrade(a["target"][0].numpy(), 4, "bicubic", valid=tv)
        np.testing.assert_array_equal(b["low"][0].numpy(), ref)
        np.testing.assert_array_equal(b["low_valid"][0].numpy().astype(bool), ref_v)
    assert max(lost) > 0.01 and max(lost) < 0.3
    with pytest.raises(ValueError, match="occlusion"):
        SyntheticDepthDataset(4, 64, occlusion=1.5)


def test_depth_dataset_disparity_items_are_inverse_depth():
    plain = SyntheticDepthDataset(4, 64, length=8, seed=5)
    disp = SyntheticDepthDataset(4, 64, length=8, seed=5, disparity=0.5)
    flipped = 0
    for i in range(8):
        a, b = plain[i], disp[i]
        assert torch.equal(a["guide"], b["guide"])
        if torch.equal(a["target"], b["target"]):
            continue
        flipped += 1
        torch.testing.assert_close(b["target"], 1.0 / a["target"])
        # The low-res input is the degradation of the disparity itself, not 1 / (low-res depth).
        ref, _ = degrade(b["target"][0].numpy(), 4, "bicubic")
        np.testing.assert_array_equal(b["low"][0].numpy(), ref)
    assert 0 < flipped < 8
    with pytest.raises(ValueError, match="disparity"):
        SyntheticDepthDataset(4, 64, disparity=-0.1)


def test_clutter_adds_depth_edges_and_keeps_the_rest_of_the_scene():
    def edges(depth):
        z = depth.astype(np.float64)
        return ((np.abs(np.diff(z, axis=1)) > 0.05 * z[:, 1:]).sum()
                + (np.abs(np.diff(z, axis=0)) > 0.05 * z[1:]).sum())

    more = 0
    for seed in range(6):
        base = make_depth_scene(seed, 96, 96, return_scene=True)
        busy = make_depth_scene(seed, 96, 96, return_scene=True, clutter=1.0)
        n = len(base["scene"].prims)
        assert len(busy["scene"].prims) >= n
        # The base scene's own draws are untouched: same room, objects and camera.
        for p, q in zip(base["scene"].prims, busy["scene"].prims[:n]):
            assert type(p) is type(q) and np.array_equal(getattr(p, "c", 0), getattr(q, "c", 0))
        assert np.array_equal(base["scene"].light_pos, busy["scene"].light_pos)
        assert np.isfinite(busy["depth"]).all() and (busy["depth"] > 0).all()
        more += edges(busy["depth"]) > edges(base["depth"])
    assert more >= 4
    assert make_depth_scene(2, 32, 32, clutter=0.0)["rgb"].tobytes() == make_depth_scene(2, 32, 32)["rgb"].tobytes()


def test_shift_image_moves_content_and_repeats_the_edge():
    a = np.arange(20).reshape(4, 5)
    b = shift_image(a, 1, -2)
    # Row r of the output is row r-1 of the input (content moved down); column c is c+2.
    np.testing.assert_array_equal(b[1:, :3], a[:3, 2:])
    np.testing.assert_array_equal(b[0], b[1])  # uncovered top row repeats the edge
    np.testing.assert_array_equal(b[:, 3], b[:, 2])
    rgb = np.random.default_rng(0).integers(0, 255, (6, 7, 3), dtype=np.uint8)
    assert shift_image(rgb, 0, 0) is rgb and shift_image(rgb, -3, 3).shape == rgb.shape


def test_misalign_shifts_only_the_guide_of_its_share_of_items():
    plain = SyntheticDepthDataset(4, 64, length=12, seed=3)
    moved = SyntheticDepthDataset(4, 64, length=12, seed=3, misalign=0.5)
    n_moved = 0
    for i in range(12):
        a, b = plain[i], moved[i]
        for k in ("low", "low_valid", "target", "target_valid"):
            assert torch.equal(a[k], b[k]), k
        if not torch.equal(a["guide"], b["guide"]):
            n_moved += 1
            # The guide is the plain one moved by whole pixels, at most MISALIGN_MAX_PX.
            g = (a["guide"].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
            h = (b["guide"].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
            r = range(-MISALIGN_MAX_PX, MISALIGN_MAX_PX + 1)
            assert any(np.array_equal(shift_image(g, dy, dx), h) for dy in r for dx in r)
        assert torch.equal(moved[i]["guide"], b["guide"])  # deterministic
    assert 2 <= n_moved <= 10
    with pytest.raises(ValueError, match="misalign"):
        SyntheticDepthDataset(4, 64, misalign=1.5)


def test_misaligned_items_are_drawn_apart_from_the_cluttered_ones():
    # Each option draws from a stream of its own: which items are misaligned does not
    # follow from which are cluttered.
    n = 16
    flat = SyntheticDepthDataset(4, 64, length=n, seed=3, clutter=0.0)
    both = SyntheticDepthDataset(4, 64, length=n, seed=3, clutter=0.5, misalign=0.5)
    aligned = SyntheticDepthDataset(4, 64, length=n, seed=3, clutter=0.5)
    cluttered = {i for i in range(n) if not torch.equal(flat[i]["target"], both[i]["target"])}
    moved = {i for i in range(n) if not torch.equal(aligned[i]["guide"], both[i]["guide"])}
    assert cluttered and moved
    assert not moved <= cluttered and not cluttered <= moved


def test_flow_dataset_items_and_units():
    ds = SyntheticFlowDataset(factor=4, crop=64, method="point", length=3, seed=0)
    it = ds[1]
    assert it["guide"].shape == (3, 64, 64) and it["low"].shape == (2, 16, 16)
    assert it["target"].shape == (2, 64, 64) and it["target_noc"].shape == (1, 64, 64)
    assert (it["target_valid"] == 1).all()
    # low-res vectors are in low-res pixels
    torch.testing.assert_close(it["low"], it["target"][:, ::4, ::4] / 4, rtol=0, atol=1e-6)
    it2 = SyntheticFlowDataset(factor=4, crop=64, length=3, seed=0)[1]  # default bilinear_aa
    assert torch.equal(it2["target"], it["target"])
    assert it2["low"].abs().max() <= it2["target"].abs().max() / 4 + 1e-4


def test_dataloader_batches():
    ds = SyntheticDepthDataset(factor=8, crop=40, length=4)  # crop -> 40 (multiple of 8)
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=2)))
    assert batch["guide"].shape == (2, 3, 40, 40) and batch["low"].shape == (2, 1, 5, 5)


def test_full_size_generation_runs():
    d = make_depth_scene(123, 256, 256)
    f = make_flow_scene(123, 256, 256)
    assert d["depth"].shape == (256, 256) and f["flow"].shape == (256, 256, 2)
    assert math.isfinite(float(d["depth"].max()))


def test_frame_shape_is_strokes_and_seat_with_gaps():
    s = Shape("frame", np.array([50.0, 50.0]), verts=np.array([[40.0, 50], [60, 50], [60, 45], [40, 45]]),
              strokes=np.array([[41.0, 50, 41, 70, 1.0], [59.0, 50, 59, 70, 1.0]]))
    x = np.array([41.0, 59.0, 50.0, 50.0, 42.5, 30.0])
    y = np.array([65.0, 69.5, 47.0, 60.0, 60.0, 60.0])
    np.testing.assert_array_equal(s.contains(x, y), [True, True, True, False, False, False])
    assert s.radius() >= np.hypot(9.0, 20.0) + 1.0 - 1e-9


def test_flow_scene_frames_thin_objects_and_same_scene_otherwise():
    a = make_flow_scene(4, 96, 128)
    assert make_flow_scene(4, 96, 128, frames=0.0)["img0"].tobytes() == a["img0"].tobytes()
    changed = 0
    for seed in range(4):
        o = make_flow_scene(seed, 96, 128, frames=1.0, return_layers=True)
        kinds = {L.shape.kind for L in o["layers"][1:]}
        assert kinds == {"frame"}
        assert np.isfinite(o["flow"]).all()
        changed += not np.array_equal(o["flow"], make_flow_scene(seed, 96, 128)["flow"])
    assert changed == 4
    with pytest.raises(ValueError, match="frames"):
        SyntheticFlowDataset(4, 64, frames=2.0)


def _same_but_guide(a, b):
    """Two items of one scene: every tensor but the guide equal, the guide the same shape."""
    for k in a:
        if k != "guide":
            assert torch.equal(a[k], b[k]), k
    assert b["guide"].shape == a["guide"].shape


@pytest.mark.parametrize("cls", [SyntheticDepthDataset, SyntheticFlowDataset])
def test_guide_augmentation_changes_only_the_guide(cls):
    plain = cls(4, 64, length=6, seed=2)
    aug = cls(4, 64, length=6, seed=2, guide_aug=1.0)
    for i in range(6):
        a, b = plain[i], aug[i]
        _same_but_guide(a, b)
        assert not torch.equal(a["guide"], b["guide"])
        assert 0 <= float(b["guide"].min()) and float(b["guide"].max()) <= 1
        # Still the same picture: the augmentation perturbs, it does not replace.
        assert float((a["guide"] - b["guide"]).abs().mean()) < 0.15
        assert torch.equal(b["guide"], aug[i]["guide"])  # deterministic per item
    with pytest.raises(ValueError, match="guide_aug"):
        cls(4, 64, guide_aug=1.5)


@pytest.mark.parametrize("cls", [SyntheticDepthDataset, SyntheticFlowDataset])
def test_guide_blur_softens_only_the_guide(cls):
    plain = cls(4, 64, length=4, seed=3)
    soft = cls(4, 64, length=4, seed=3, guide_blur=1.5)

    def grad(g):  # mean absolute horizontal luminance step
        return float((g[:, :, 1:] - g[:, :, :-1]).abs().mean())

    for i in range(4):
        a, b = plain[i], soft[i]
        _same_but_guide(a, b)
        assert grad(b["guide"]) < 0.9 * grad(a["guide"])
        # Only blurred: the mean colour stays (up to uint8 rounding and the repeated edges).
        assert abs(float(a["guide"].mean() - b["guide"].mean())) < 0.02
        assert torch.equal(b["guide"], soft[i]["guide"])  # deterministic per item
    for bad in (-0.5, 100.0):
        with pytest.raises(ValueError, match="guide_blur"):
            cls(4, 64, guide_blur=bad)


@pytest.mark.parametrize("cls", [SyntheticDepthDataset, SyntheticFlowDataset])
def test_guide_contrast_stretches_only_the_guide(cls):
    plain = cls(4, 64, length=6, seed=3)
    hard = cls(4, 64, length=6, seed=3, guide_contrast=3.0)
    ratios = []
    for i in range(6):
        a, b = plain[i], hard[i]
        _same_but_guide(a, b)
        assert 0 <= float(b["guide"].min()) and float(b["guide"].max()) <= 1
        # Up to clipping, the spread around the mean grows by a factor in [1, 3].
        ratios.append(float(b["guide"].std() / a["guide"].std()))
        assert torch.equal(b["guide"], hard[i]["guide"])  # deterministic per item
    assert all(0.99 <= r <= 3.0 + 1e-3 for r in ratios) and max(ratios) > 1.2
    assert len(set(round(r, 3) for r in ratios)) > 1  # a factor per item, not one for all
    for bad in (0.5, 5.0):
        with pytest.raises(ValueError, match="guide_contrast"):
            cls(4, 64, guide_contrast=bad)


def test_texture_gain_strengthens_the_textures_not_the_scene():
    from pacup.train.synth import render_depth_scene

    sc = make_depth_scene(5, 64, 96, clutter=0.5, return_scene=True)
    assert np.array_equal(render_depth_scene(sc["scene"], 64, 96, np.random.default_rng(1))["rgb"],
                          render_depth_scene(sc["scene"], 64, 96, np.random.default_rng(1), texture_gain=1.0)["rgb"])
    for seed in range(3):
        a = make_depth_scene(seed, 64, 96, clutter=0.5, return_scene=True)
        b = make_depth_scene(seed, 64, 96, clutter=0.5, texture_gain=4.0)
        assert np.array_equal(a["depth"], b["depth"]) and not np.array_equal(a["rgb"], b["rgb"])
        assert np.array_equal(b["rgb"], make_depth_scene(seed, 64, 96, clutter=0.5, texture_gain=4.0)["rgb"])
        # Without the sensor's noise and blur: the colour steps inside surfaces grow with the gain.
        scene, d = a["scene"], a["depth"]
        scene.noise_std, scene.blur = 0.0, 0.0
        inside = np.abs(d[:, 1:] - d[:, :-1]) < 0.01 * d[:, 1:]

        def steps(gain):  # mean absolute horizontal luminance step between pixels of one surface
            y = render_depth_scene(scene, 64, 96, texture_gain=gain)["rgb"].astype(float).mean(2)
            return np.abs(y[:, 1:] - y[:, :-1])[inside].mean()

        s1, s2, s4 = steps(1.0), steps(2.0), steps(4.0)
        assert s1 < s2 < s4 and s4 > 1.5 * s1
    for bad in (0.0, -1.0):
        with pytest.raises(ValueError, match="texture_gain"):
            render_depth_scene(sc["scene"], 8, 8, texture_gain=bad)


def test_dataset_texture_gain_changes_only_the_guide():
    plain = SyntheticDepthDataset(4, 64, length=6, seed=3)
    strong = SyntheticDepthDataset(4, 64, length=6, seed=3, texture_gain=8.0)
    diffs = []
    for i in range(6):
        a, b = plain[i], strong[i]
        _same_but_guide(a, b)
        assert torch.equal(b["guide"], strong[i]["guide"])  # deterministic per item
        diffs.append(round(float((a["guide"] - b["guide"]).abs().mean()), 4))
    assert max(diffs) > 0.01 and len(set(diffs)) > 1  # a gain per item, not one for all
    for bad in (0.5, 17.0):
        with pytest.raises(ValueError, match="texture_gain"):
            SyntheticDepthDataset(4, 64, texture_gain=bad)


def test_two_tone_layers_change_the_colours_not_the_motion():
    from pacup.train.synth import TwoToneTexture

    changed = 0
    for seed in range(4):
        a = make_flow_scene(seed, 64, 96, frames=0.5)
        b = make_flow_scene(seed, 64, 96, frames=0.5, two_tone=1.0, return_layers=True)
        for k in ("flow", "valid", "inside"):
            assert np.array_equal(a[k], b[k]), k
        assert all(isinstance(layer.texture, TwoToneTexture) for layer in b["layers"])
        changed += not np.array_equal(a["img0"], b["img0"])
        again = make_flow_scene(seed, 64, 96, frames=0.5, two_tone=1.0)
        assert np.array_equal(again["img0"], b["img0"]) and np.array_equal(again["img1"], b["img1"])
    assert changed == 4
    with pytest.raises(ValueError, match="two_tone"):
        SyntheticFlowDataset(4, 64, two_tone=1.5)


def test_two_tone_texture_splits_by_a_cut_or_by_stripes():
    from pacup.train.synth import TwoToneTexture

    a = T.TexImage(np.zeros((3, 8, 8), np.float32))
    b = T.TexImage(np.ones((3, 8, 8), np.float32))
    x = np.arange(10, dtype=np.float64)
    y = np.zeros(10)
    cut = TwoToneTexture(a, b, origin=(4.5, 0), angle=0.0)
    assert cut.sample(x, y)[0].tolist() == [0] * 5 + [1] * 5
    stripes = TwoToneTexture(a, b, origin=(0, 0), angle=0.0, period=2.0)
    assert stripes.sample(x, y)[0].tolist() == [0, 0, 1, 1, 0, 0, 1, 1, 0, 0]
    assert cut.planes is a.planes


def test_stretch_contrast_scales_deviations_from_the_mean_level():
    from pacup.train.synth import stretch_contrast

    img = np.array([[[100, 100, 100], [130, 120, 110]]], np.uint8)  # mean level 110
    assert stretch_contrast(img, 1.0) is img
    out = stretch_contrast(img, 2.0).astype(int)
    assert out.tolist() == [[[90, 90, 90], [150, 130, 110]]]
    # Clipped like an exposed sensor, never wrapped.
    assert stretch_contrast(np.array([[[0, 0, 0], [250, 250, 250]]], np.uint8), 4.0).tolist() == \
        [[[0, 0, 0], [255, 255, 255]]]


def test_camera_blur_spreads_a_one_pixel_step():
    from pacup.train.synth import camera_blur

    step = np.zeros((16, 16, 3), np.uint8)
    step[:, 8:] = 200
    assert camera_blur(step, 0.0) is step
    row = camera_blur(step, 1.0)[8, :, 0].astype(int)
    d = np.abs(np.diff(row))
    # The step no longer sits in one pixel pair: its neighbours carry a large part of it.
    assert d[7] < 200 and d[6] > 0.3 * d[7] and d[8] > 0.3 * d[7]
    assert row[0] == 0 and row[-1] == 200
