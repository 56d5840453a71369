"""Growing a trained network to a larger factor (pacup.train.grow, --init-from across factors)."""

import json

import pytest
import torch
import torch.nn.functional as F

from pacup.models import PacJointUpsample
from pacup.train.ablations import build_ablation
from pacup.train.grow import can_grow, grow_into
from pacup.train.loop import TrainConfig, train


def _randomise(net, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.1)
    return net


@pytest.mark.parametrize("ablation", [None, "k1"])
def test_stages_carry_over_coarsest_first_and_the_new_ones_start_bilinear(ablation):
    make = (lambda f: PacJointUpsample(f, "lite", residual=True)) if ablation is None else \
        (lambda f: build_ablation("k1", f, "lite", residual=True))
    src, dst = _randomise(make(4), 1), make(16)
    assert can_grow(src, dst) and not can_grow(dst, src) and not can_grow(src, make(4))
    grow_into(src, dst)
    a, b = src.state_dict(), dst.state_dict()
    for i in range(2):
        for part in ("weight", "bias"):
            assert torch.equal(b[f"decoder.{i}.{part}"], a[f"decoder.{i}.{part}"])
    # The new stages start as a per-channel bilinear x2 (with K = 1; PAC adapts it to the guide).
    x = torch.rand(1, 16, 6, 7)
    stage = torch.nn.ConvTranspose2d(16, 16, 5, stride=2, padding=2, output_padding=1)
    for i in (2, 3):
        assert not b[f"decoder.{i}.bias"].any()
        with torch.no_grad():
            stage.weight.copy_(b[f"decoder.{i}.weight"])
            stage.bias.zero_()
            want = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
            torch.testing.assert_close(stage(x)[..., 1:-1, 1:-1], want[..., 1:-1, 1:-1], atol=1e-6, rtol=1e-6)
    for key in a:
        if not key.startswith(("decoder.", "guidance.4", "guide_scale")):
            assert torch.equal(a[key], b[key]), key
    if ablation is None:
        g = src.guide_channels
        w = b["guidance.4.weight"]
        assert torch.equal(w[:2 * g], a["guidance.4.weight"])
        assert torch.equal(w[2 * g : 3 * g], a["guidance.4.weight"][g:]) and torch.equal(w[3 * g :], w[2 * g : 3 * g])
        assert b["guide_scale"].tolist() == [a["guide_scale"][0], a["guide_scale"][1]] + [a["guide_scale"][1]] * 2


def test_grown_concat_cnn_computes_what_its_source_computes():
    src = _randomise(build_ablation("concat", 8, "full"), 2)
    dst = build_ablation("concat", 16, "full")
    assert (src.config["channels"], dst.config["channels"]) == (76, 84)
    assert can_grow(src, dst)
    grow_into(src, dst)
    low, guide = torch.rand(1, 1, 5, 4), torch.rand(1, 3, 80, 64)
    with torch.no_grad():
        # The concat-CNN's factor only sets the bicubic size: the source run at x16 is the reference.
        src.factor = 16
        torch.testing.assert_close(dst(low, guide), src(low, guide), atol=1e-5, rtol=1e-5)
    # Its new units are alive (random inputs) and start with zero outgoing weights.
    assert dst.fused[0].weight[76:].abs().sum() > 0 and dst.fused[2].weight[:, 76:].abs().sum() == 0


def test_grow_refuses_what_it_cannot_map():
    pac8 = PacJointUpsample(8, "lite")
    assert not can_grow(pac8, PacJointUpsample(16, "full"))  # another width
    assert not can_grow(pac8, PacJointUpsample(16, "lite", negative_slope=0.1))
    assert not can_grow(pac8, build_ablation("k1", 16, "lite"))  # another architecture
    with pytest.raises(ValueError, match="cannot grow"):
        grow_into(pac8, PacJointUpsample(16, "full"))


def test_init_from_a_smaller_factor_grows_the_network(tmp_path):
    tiny = dict(task="depth", variant="lite", crop=32, batch=2, threads=1, log_every=1, synthetic_pool=4,
                val_every=0, ckpt_every=100)
    x2 = train(TrainConfig(**tiny, factor=2, steps=2, out_dir=str(tmp_path / "x2")))
    x4 = train(TrainConfig(**tiny, factor=4, steps=0, init_from=x2["model"], out_dir=str(tmp_path / "x4")))
    from pacup.train.ablations import load_any_model

    src, grown = load_any_model(x2["model"]), load_any_model(x4["model"])
    assert grown.factor == 4 and torch.equal(grown.decoder[0].weight, src.decoder[0].weight)
    assert torch.equal(grown.head[0].weight, src.head[0].weight)
    assert json.loads((tmp_path / "x4" / "config.json").read_text())["init_from"] == x2["model"]
    low, guide = torch.rand(1, 1, 6, 6), torch.rand(1, 3, 24, 24)
    with torch.no_grad():
        assert grown(low, guide).shape == (1, 1, 24, 24) and torch.isfinite(grown(low, guide)).all()
