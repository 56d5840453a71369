import json

import numpy as np
import pytest
import torch.nn.functional as F
from PIL import Image
from torch import nn

from pacup.io import write_depth, write_flow
from pacup.train import evaluate as E
from pacup.train.folders import Sample, load_dataset, load_pairs, motorcycle

RNG = np.random.default_rng(1)


def _step_sample(H=48, W=64, col=29, name="step"):
    depth = np.full((H, W), 2.0, np.float32)
    depth[:, col:] = 3.0
    rgb = np.zeros((H, W, 3), np.uint8)
    rgb[:, col:] = 200
    return Sample(name, "depth", rgb, depth, np.ones((H, W), bool), "m")


# --------------------------------------------------------------------------- metrics


def test_edge_mask_definition():
    d = np.full((20, 30), 10.0)
    d[:, 15:] = 10.6  # 6 % jump: an edge
    d[:, 25:] = 10.9  # 2.8 % jump: not an edge
    m = E.depth_edge_mask(d, np.ones_like(d, bool))
    cols = np.flatnonzero(m.any(axis=0))
    # Pixels 14 | 15 form the discontinuity; within 3 px (Chebyshev): columns 11 .. 18.
    assert cols.tolist() == list(range(11, 19))
    assert m[:, 11:19].all()
    # An invalid neighbour is no discontinuity.
    v = np.ones_like(d, bool)
    v[:, 15] = False
    d2 = d.copy()
    d2[:, 15:] = 10.0
    d2[:, 15] = 0.0
    assert not E.depth_edge_mask(d2, v).any()


def test_depth_metrics_units_border_and_edges():
    gt = np.full((30, 40), 2.0)
    gt[:, 20:] = 3.0
    valid = np.ones_like(gt, bool)
    valid[10, 10] = False
    pred = gt + 0.5
    pred[10, 10] = 1e9  # invalid ground truth: ignored
    pred[:6] = -1e9  # inside the 6-px border: ignored
    m = E.depth_metrics(pred, gt, valid, "m", border=6, disparity_max=3.0)
    assert m["rmse"] == pytest.approx(0.5) and m["mae"] == pytest.approx(0.5)
    assert m["rmse_cm"] == pytest.approx(50.0)
    assert m["rmse_255"] == pytest.approx(0.5 * 255 / 3.0)
    assert m["edge_rmse"] == pytest.approx(0.5) and m["n_edge_pixels"] == (30 - 12) * 8
    assert m["n_pixels"] == (30 - 12) * (40 - 12) - 1 and m["coverage"] == 1.0
    pred2 = gt.copy()
    pred2[:, 17:23] += 1.0  # error only near the edge
    m2 = E.depth_metrics(pred2, gt, np.ones_like(valid), "mm")
    assert m2["edge_mae"] == pytest.approx(6 / 8)
    assert m2["mae"] == pytest.approx(6 / 28) and m2["mae_cm"] == pytest.approx(0.1 * 6 / 28)
    pred2[12, 12] = np.nan
    assert E.depth_metrics(pred2, gt, np.ones_like(valid), "m")["coverage"] < 1.0


def test_flow_metrics():
    gt = RNG.standard_normal((10, 12, 2))
    pred = gt + np.array([3.0, 4.0])
    noc = np.ones((10, 12), bool)
    noc[:, :3] = False
    pred[:, :3] += np.array([3.0, 4.0])
    m = E.flow_metrics(pred, gt, np.ones((10, 12), bool), noc)
    assert m["epe_noc"] == pytest.approx(5.0) and m["epe_occ"] == pytest.approx(10.0)
    assert m["epe"] == pytest.approx((9 * 5 + 3 * 10) / 12)


# --------------------------------------------------------------------------- evaluate


def test_default_protocol_and_a_callable_method():
    assert E.default_protocol("depth") == "B" and E.default_protocol("flow") == "flow"
    s = _step_sample()

    def exact(low, low_valid, guide, factor, align, flow):  # a method that returns the ground truth
        return s.gt.copy()

    r = E.evaluate(exact, [s], "B", 4)
    assert r["method"] == "exact" and r["metrics"]["rmse"] == 0.0
    assert E.evaluate(exact, [s], "B", 4, name="oracle")["method"] == "oracle"
    assert E.evaluate("bicubic", [s], "B", 4)["metrics"]["rmse"] > 0


def test_protocols():
    assert E.protocol_method("A") == "point" and E.protocol_method("B") == "bicubic"
    assert E.protocol_method("flow") == "bilinear_aa" and E.protocol_method("area") == "area"
    with pytest.raises(ValueError):
        E.protocol_method("C")


@pytest.mark.parametrize("protocol", ["A", "B"])
def test_ramp_is_exact_on_the_protocols_lattice(protocol):
    # A linear ramp: bicubic on the right lattice is exact inside the border crop; on the
    # wrong one it would be off by (s - 1) / 2 px of ramp.
    H, W, s = 64, 96, 8
    gt = np.tile(1.0 + np.arange(W, dtype=np.float32) / W, (H, 1))
    samp = Sample("ramp", "depth", np.zeros((H, W, 3), np.uint8), gt, np.ones((H, W), bool), "m")
    r = E.evaluate("bicubic", [samp], protocol, s, border=2 * s)
    assert r["degradation"] == E.PROTOCOLS[protocol]
    assert r["metrics"]["rmse"] < 2e-3, r["metrics"]  # the wrong lattice gives 0.036


def test_guided_methods_beat_bicubic_on_a_step():
    samples = [_step_sample(col=c, name=f"s{c}") for c in (21, 29, 38)]
    res = {m: E.evaluate(m, samples, "B", 8)["metrics"] for m in ("bicubic", "jbu", "guided")}
    for m in ("jbu", "guided"):
        assert res[m]["rmse"] < 0.8 * res["bicubic"]["rmse"]
        assert res[m]["edge_rmse"] < 0.8 * res["bicubic"]["edge_rmse"]


class _NearestNet(nn.Module):
    factor = 4

    def forward(self, low, guide):
        return F.interpolate(low, scale_factor=4, mode="nearest")


def test_networks_run_through_the_pipeline():
    samp = _step_sample(H=32, W=48, col=17)
    samp.gt[:, :5] = 7.0
    r_net = E.evaluate(_NearestNet(), [samp], "B", 4, name="net")
    r_ref = E.evaluate("nearest", [samp], "B", 4)
    # Normalise -> nearest -> denormalise is nearest upsampling.
    assert r_net["method"] == "net"
    assert r_net["metrics"]["rmse"] == pytest.approx(r_ref["metrics"]["rmse"], rel=1e-5)
    assert r_net["metrics"]["rmse"] > 0.01


def test_flow_is_scaled_to_full_res_pixels():
    H, W = 32, 32
    flow = np.zeros((H, W, 2), np.float32)
    flow[..., 0], flow[..., 1] = 5.0, -3.0
    s = Sample("f", "flow", RNG.integers(0, 255, (H, W, 3)).astype(np.uint8), flow, np.ones((H, W), bool), "px",
               noc=np.ones((H, W), bool))
    for m in ("bicubic", "jbu", "guided", _NearestNet()):
        r = E.evaluate(m, [s], "flow", 4)
        assert r["metrics"]["epe"] < 1e-4 and "epe_noc" in r["metrics"]


def test_compare_writes_json_and_table(tmp_path):
    from rich.console import Console

    samples = [_step_sample()]
    con = Console(record=True, width=200)
    res = E.compare(["bicubic", "jbu"], samples, "B", 8, json_path=tmp_path / "r.json", console=con)
    text = con.export_text()
    assert "bicubic" in text and "jbu" in text and "vs bicubic" in text
    data = json.loads((tmp_path / "r.json").read_text())
    assert [r["method"] for r in data["results"]] == ["bicubic", "jbu"]
    assert data["results"][1]["metrics"]["rmse_cm"] == pytest.approx(res[1]["metrics"]["rmse_cm"])


# --------------------------------------------------------------------------- folders


def _png(path, rgb):
    Image.fromarray(rgb).save(path)


def test_load_pairs_layouts(tmp_path):
    rgb = RNG.integers(0, 255, (16, 20, 3)).astype(np.uint8)
    depth = (RNG.random((16, 20)) + 1).astype(np.float32)
    flat = tmp_path / "flat"
    flat.mkdir()
    _png(flat / "a_color.png", rgb)
    np.save(flat / "a_depth.npy", depth)
    _png(flat / "b_color.png", rgb)  # no ground truth: skipped
    [s] = load_pairs(flat)
    assert s.name == "a" and s.units == "stored"
    np.testing.assert_array_equal(s.gt, depth)
    np.testing.assert_array_equal(s.guide, rgb)

    sub = tmp_path / "sub"
    (sub / "rgb").mkdir(parents=True)
    (sub / "depth").mkdir()
    _png(sub / "rgb" / "0001.png", rgb)
    write_depth(sub / "depth" / "0001.png", depth, depth_scale=1000.0)
    [s2] = load_pairs(sub, depth_scale=1000.0)
    assert s2.units == "m"
    np.testing.assert_allclose(s2.gt, depth, atol=1e-3)


def test_flow_pairs_and_npz_disparity(tmp_path):
    rgb = RNG.integers(0, 255, (8, 12, 3)).astype(np.uint8)
    flow = RNG.standard_normal((8, 12, 2)).astype(np.float32)
    _png(tmp_path / "0000000-img0.png", rgb)
    _png(tmp_path / "0000000-img1.png", rgb[::-1].copy())
    write_flow(tmp_path / "0000000-gt.flo", flow)
    [s] = load_dataset(str(tmp_path))
    assert s.kind == "flow" and s.units == "px"
    np.testing.assert_array_equal(s.gt, flow)
    np.testing.assert_array_equal(s.guide, rgb)

    m = tmp_path / "moto"
    m.mkdir()
    disp = (RNG.random((8, 12)) * 50 + 5).astype(np.float32)
    disp[0, 0] = np.inf
    _png(m / "motorcycle_left.png", rgb)
    np.savez(m / "motorcycle_disp.npz", disp)
    [d] = load_dataset(str(m))
    assert d.is_disparity and not d.valid[0, 0] and d.valid.sum() == 95
    np.testing.assert_allclose(d.edge_depth[1, 1], 193.001 * 994.978 / (disp[1, 1] + 31.086), rtol=1e-6)
    assert [x.name for x in motorcycle(m)] == ["motorcycle"]


def test_load_pairs_errors(tmp_path):
    with pytest.raises(ValueError):
        load_pairs(tmp_path)
    _png(tmp_path / "x_color.png", np.zeros((8, 8, 3), np.uint8))
    np.save(tmp_path / "x_depth.npy", np.ones((9, 8), np.float32))
    with pytest.raises(ValueError, match="x_depth"):
        load_pairs(tmp_path)
