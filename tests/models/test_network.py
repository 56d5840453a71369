"""PacJointUpsample: shapes, parameter counts, config, receptive field, options, gradients."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from pacup.errors import InputError
from pacup.models import PacJointUpsample, build_model, count_parameters

FACTORS = (2, 4, 8, 16)


def expected_params(factor, c, g, k=5, scale=False):
    """Parameter count written out from the published structure (weights + biases)."""
    n = int(math.log2(factor))
    conv = lambda cin, cout: cin * cout * k * k + cout  # noqa: E731
    target = conv(1, c) + 2 * conv(c, c)
    guidance = conv(3, c) + conv(c, c) + conv(c, g * n)
    decoder = n * conv(c, c)
    head = conv(c, c) + conv(c, 1)
    return target + guidance + decoder + head + (n if scale else 0)


@pytest.mark.parametrize("variant", ["full", "lite"])
@pytest.mark.parametrize("factor", FACTORS)
def test_shapes_every_factor_and_variant(factor, variant):
    torch.manual_seed(0)
    net = PacJointUpsample(factor, variant).eval()
    with torch.no_grad():
        out = net(torch.rand(2, 1, 3, 5), torch.rand(2, 3, 3 * factor, 5 * factor))
    assert out.shape == (2, 1, 3 * factor, 5 * factor)
    assert torch.isfinite(out).all()


def test_parameter_counts_match_published_structure():
    published = {4: 183_000, 8: 222_000, 16: 260_000}
    for f in FACTORS:
        full = PacJointUpsample(f, "full", guide_scale=None)
        assert count_parameters(full) == expected_params(f, 32, 16)
        if f in published:
            assert abs(count_parameters(full) - published[f]) / published[f] < 0.01
        # The guide scale adds one scalar per decoder stage.
        assert count_parameters(PacJointUpsample(f)) == expected_params(f, 32, 16, scale=True)
        lite = PacJointUpsample(f, "lite", guide_scale=None)
        assert count_parameters(lite) == expected_params(f, 16, 16)
    assert count_parameters(PacJointUpsample(4, "full", guide_scale=None)) == 183_489
    assert count_parameters(PacJointUpsample(8, "full", guide_scale=None)) == 221_937
    assert count_parameters(PacJointUpsample(16, "full", guide_scale=None)) == 260_385
    # ANCHORS: the Lite variant has ~56k (no factor named); x4 is within 5 %.
    assert abs(count_parameters(PacJointUpsample(4, "lite", guide_scale=None)) - 56_000) / 56_000 < 0.05


def test_config_rebuilds_same_architecture():
    net = PacJointUpsample(8, "lite", residual=True, guide_scale=3.0)
    cfg = net.config
    assert cfg == {"arch": "PacJointUpsample", "factor": 8, "variant": "lite", "residual": True,
                   "guide_scale": 3.0, "channels": 16, "guide_channels": 16, "kernel_size": 5,
                   "negative_slope": 0.0}
    again = build_model(cfg)
    assert again.config == cfg
    again.load_state_dict(net.state_dict())  # same parameter names and shapes
    assert PacJointUpsample(**{k: v for k, v in cfg.items() if k != "arch"}).config == cfg


@pytest.mark.parametrize("bad", [3, 1, 32, 4.0, True, "4"])
def test_bad_factor_rejected(bad):
    with pytest.raises(InputError, match="factor"):
        PacJointUpsample(bad)


def test_bad_arguments_rejected():
    with pytest.raises(InputError, match="variant"):
        PacJointUpsample(4, "huge")
    with pytest.raises(InputError, match="guide_scale"):
        PacJointUpsample(4, guide_scale=0.0)
    with pytest.raises(InputError, match="kernel_size"):
        PacJointUpsample(4, kernel_size=4)
    for bad in (-0.1, 1.0, True, "0.1", None):
        with pytest.raises(InputError, match="negative_slope"):
            PacJointUpsample(4, negative_slope=bad)
    with pytest.raises(InputError, match="arch"):
        build_model({"arch": "Nope", "factor": 4})
    with pytest.raises(InputError, match="config"):
        build_model({"factor": 4, "widths": 3})


def test_guide_size_mismatch_rejected():
    net = PacJointUpsample(4)
    with pytest.raises(InputError, match=r"guide must be \(B=1, 3, 32, 32\)"):
        net(torch.rand(1, 1, 8, 8), torch.rand(1, 3, 30, 32))
    with pytest.raises(InputError, match="4-D"):
        net(torch.rand(1, 8, 8), torch.rand(1, 3, 32, 32))


def test_channels_are_independent_samples_sharing_the_guide():
    torch.manual_seed(1)
    net = PacJointUpsample(4).eval()
    low, guide = torch.rand(2, 2, 6, 7), torch.rand(2, 3, 24, 28)
    with torch.no_grad():
        both = net(low, guide)
        u = net(low[:, :1], guide)
        v = net(low[:, 1:], guide)
    torch.testing.assert_close(both, torch.cat([u, v], 1), atol=1e-5, rtol=1e-5)


def test_guide_scale_multiplies_features():
    torch.manual_seed(2)
    plain = PacJointUpsample(8, guide_scale=None)
    scaled = PacJointUpsample(8, guide_scale=3.5)
    state = {k: v for k, v in scaled.state_dict().items() if k != "guide_scale"}
    plain.load_state_dict(state)
    assert "guide_scale" not in dict(plain.named_parameters())
    g = torch.rand(1, 3, 32, 40)
    with torch.no_grad():
        for a, b in zip(plain.guide_features(g), scaled.guide_features(g)):
            torch.testing.assert_close(b, 3.5 * a, atol=1e-5, rtol=1e-5)
    shapes = [tuple(t.shape) for t in scaled.guide_features(g)]
    assert shapes == [(1, 16, 8, 10), (1, 16, 16, 20), (1, 16, 32, 40)]


def test_residual_adds_bicubic_upsampling():
    torch.manual_seed(3)
    net = PacJointUpsample(4, residual=True).eval()
    with torch.no_grad():
        net.head[-1].weight.zero_()
        net.head[-1].bias.zero_()
        low = torch.rand(1, 1, 6, 5)
        out = net(low, torch.rand(1, 3, 24, 20))
    torch.testing.assert_close(out, F.interpolate(low, size=(24, 20), mode="bicubic", align_corners=False))


@pytest.mark.parametrize("factor,pyramid", [(2, False), (8, False), (8, True), (16, True)])
def test_receptive_radius_bounds_the_influence(factor, pyramid):
    """Changing one low-res sample or one guide block changes no output pixel farther than
    ``receptive_radius`` low-res pixels away: the pipeline's tile margin is enough."""
    torch.manual_seed(4)
    net = PacJointUpsample(factor, guide_pyramid=pyramid).eval()
    n, c = 2 * net.receptive_radius + 9, net.receptive_radius + 4
    low, guide = torch.rand(1, 1, n, n), torch.rand(1, 3, n * factor, n * factor)
    with torch.no_grad():
        base = net(low, guide)
        low2 = low.clone()
        low2[..., c, c] += 1.0
        guide2 = guide.clone()
        guide2[..., c * factor : (c + 1) * factor, c * factor : (c + 1) * factor] = torch.rand(3, factor, factor)
        reach = []
        for changed in (net(low2, guide), net(low, guide2)):
            diff = (changed - base).abs()[0, 0] > 0
            ys, xs = torch.nonzero(diff, as_tuple=True)
            assert len(ys) > 0
            reach.append(int(torch.maximum((ys // factor - c).abs(), (xs // factor - c).abs()).max()))
    assert max(reach) <= net.receptive_radius
    # The bound is not loose by more than two pixels.
    assert max(reach) >= net.receptive_radius - 2, reach


def test_gradients_reach_every_branch():
    torch.manual_seed(5)
    net = PacJointUpsample(4)
    low, guide = torch.rand(2, 1, 6, 6), torch.rand(2, 3, 24, 24)
    loss = (net(low, guide) - torch.rand(2, 1, 24, 24)).square().mean()
    loss.backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    for part in (net.target, net.guidance, net.decoder, net.head):
        assert sum(float(p.grad.abs().sum()) for p in part.parameters()) > 0
    assert float(net.guide_scale.grad.abs().sum()) > 0


def _manual_forward(net, low, guide, act):
    """The forward pass written out layer by layer with the activation ``act``."""
    t = net.target
    y = t[4](act(t[2](act(t[0](low)))))
    feats = net.guide_features(guide)
    for up, f in zip(net.decoder, feats):
        y = act(up(y, f))
    y = net.head[2](act(net.head[0](y)))
    return y + F.interpolate(low, scale_factor=net.factor, mode="bicubic", align_corners=False)


@pytest.mark.parametrize("slope", [0.0, 0.1])
def test_negative_slope_is_every_hidden_activation(slope):
    torch.manual_seed(2)
    net = PacJointUpsample(4, "lite", residual=True, negative_slope=slope).eval()
    assert net.config["negative_slope"] == slope and build_model(net.config).config == net.config
    kinds = {type(m) for m in net.modules() if isinstance(m, (torch.nn.ReLU, torch.nn.LeakyReLU))}
    assert kinds == ({torch.nn.ReLU} if slope == 0 else {torch.nn.LeakyReLU})  # 0: the published layers
    low, guide = torch.rand(2, 1, 6, 5), torch.rand(2, 3, 24, 20)
    with torch.no_grad():
        torch.testing.assert_close(net(low, guide), _manual_forward(net, low, guide,
                                                                    lambda x: F.leaky_relu(x, slope)))


def test_leaky_network_leaves_the_dead_state_relu_cannot():
    """The collapse seen in training: the target branch's second layer below zero for every
    input. With ReLU the output is then bicubic whatever the input, and no gradient reaches
    the layers before it, so training cannot leave; with a leaky slope it can."""
    low, guide = torch.rand(2, 1, 6, 6), torch.rand(2, 3, 24, 24)
    grads = {}
    for slope in (0.0, 0.1):
        torch.manual_seed(4)
        net = PacJointUpsample(4, "lite", residual=True, negative_slope=slope)
        with torch.no_grad():
            net.target[2].bias.fill_(-100.0)
        out = net(low, guide)
        (out - torch.rand_like(out)).abs().mean().backward()
        grads[slope] = float(net.target[0].weight.grad.abs().sum())
        if slope == 0:
            x2 = torch.rand_like(low)
            other = net(x2, guide) - F.interpolate(x2, scale_factor=4, mode="bicubic")
            # The correction no longer depends on the signal: the same for another input.
            torch.testing.assert_close(out - F.interpolate(low, scale_factor=4, mode="bicubic"),
                                       other, rtol=0, atol=1e-5)
    assert grads[0.0] == 0.0 and grads[0.1] > 0


def test_guide_pyramid_computes_each_stage_on_the_pooled_guide():
    """With guide_pyramid, stage i's slice is the guidance branch run on the guide pooled to
    that stage's size (the whole branch, then slice i: the reference the sliced fast path
    must match), times the stage's scale; the parameters are those of the plain network."""
    torch.manual_seed(7)
    plain = PacJointUpsample(8, "lite", residual=True)
    pyr = PacJointUpsample(8, "lite", residual=True, guide_pyramid=True)
    assert pyr.config == dict(plain.config, guide_pyramid=True)
    assert "guide_pyramid" not in plain.config  # unchanged configs (and files) without it
    assert build_model(pyr.config).config == pyr.config
    assert count_parameters(pyr) == count_parameters(plain)
    pyr.load_state_dict(plain.state_dict())
    with torch.no_grad():
        pyr.guide_scale.copy_(torch.tensor([2.0, 3.0, 5.0]))
        guide = torch.rand(2, 3, 32, 48)
        feats = pyr.guide_features(guide)
        g = pyr.guide_channels
        for i, (f, pool) in enumerate(zip(feats, (4, 2, 1))):
            ref = pyr.guidance(F.avg_pool2d(guide, pool) if pool > 1 else guide)[:, i * g : (i + 1) * g]
            torch.testing.assert_close(f, ref * pyr.guide_scale[i], atol=1e-5, rtol=1e-5)
        # The last stage sees the full-resolution guide in both; the coarser ones differ.
        plain.load_state_dict(pyr.state_dict())
        base = plain.guide_features(guide)
        torch.testing.assert_close(feats[2], base[2], atol=1e-5, rtol=1e-5)
        assert (feats[0] - base[0]).abs().max() > 1e-3
        low = torch.rand(2, 1, 4, 6)
        assert pyr(low, guide).shape == (2, 1, 32, 48)
    assert "guide_pyramid=True" in repr(pyr)


def test_guide_pyramid_gradients_reach_every_branch():
    torch.manual_seed(8)
    net = PacJointUpsample(4, guide_pyramid=True)
    low, guide = torch.rand(2, 1, 6, 6), torch.rand(2, 3, 24, 24)
    (net(low, guide) - torch.rand(2, 1, 24, 24)).square().mean().backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name
