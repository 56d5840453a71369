"""Start a network for a larger factor from one trained at a smaller factor ("growing").

``pacup train --factor 16 --init-from depth-x8`` starts the x16 network from the x8 one
instead of failing on the factor: depth-x8 run at half size beats every x16 network trained
from scratch on the motorcycle (weights/README.md, "Depth x16"), so its weights are a better
start than a random init. What carries over, for the three architectures the release compares:

- :class:`~pacup.models.PacJointUpsample` and its K = 1 ablation: the target branch, the head
  and the first two guidance convolutions as they are; decoder stage i, guidance slice i and
  guide scale i for the source's stages, coarsest first; each new finer stage starts as a
  per-channel bilinear x2 upsampling (zero bias; PAC's K then weights its taps by guide
  similarity, without renormalising them) with a copy of the source's finest guidance slice
  and scale. The grown network resembles the source run at 1/2 (1/4, ...) of the size with
  its last features upsampled, but is not the same function (the head now runs at the full
  size): a start, which training adapts. Measured: depth-x8 grown to x16 scores 13.62 (0.82 x
  bicubic) on the motorcycle before any x16 step, against 16.19 (0.98) when the new stage
  started as a copy of the finest one.
- :class:`~pacup.train.ablations.ConcatJointUpsample`: nothing depends on the factor but the
  width :func:`~pacup.train.ablations.build_ablation` matches to the PAC network's parameter
  count (76 at x8, 84 at x16 for the full width). The source's units keep their weights and
  the new units get the fresh network's random incoming weights and zero outgoing ones, so the
  grown network computes what the source computes at the larger factor (exactly, see the
  tests) and the new units start learning from there.

Everything else in the two configs (variant, widths of the branches, kernel, activation,
residual, guidance options) must match.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["can_grow", "grow_into"]


def _rest(config: dict, *keys: str) -> dict:
    return {k: v for k, v in config.items() if k not in ("factor",) + keys}


def can_grow(src: nn.Module, dst: nn.Module) -> bool:
    """Whether :func:`grow_into` takes ``src`` into ``dst``: the same architecture, a larger
    factor in ``dst``, and otherwise the same config (the concat-CNN's width may grow)."""
    a, b = getattr(src, "config", {}), getattr(dst, "config", {})
    if type(src) is not type(dst) or not a or not b or not b.get("factor", 0) > a.get("factor", 0):
        return False
    if a.get("arch") == "ConcatJointUpsample":
        return _rest(a, "channels") == _rest(b, "channels") and b["channels"] >= a["channels"]
    return _rest(a) == _rest(b) and hasattr(src, "n_stages")


@torch.no_grad()
def grow_into(src: nn.Module, dst: nn.Module) -> None:
    """Load ``src``'s weights into ``dst`` (a larger factor) as the module doc says.

    Raises:
        ValueError: :func:`can_grow` is False for them.
    """
    if not can_grow(src, dst):
        raise ValueError(f"cannot grow a {type(src).__name__} {getattr(src, 'config', {})} into a "
                         f"{type(dst).__name__} {getattr(dst, 'config', {})}")
    have, want = src.state_dict(), dst.state_dict()
    if dst.config["arch"] == "ConcatJointUpsample":
        state = _widen_concat(have, want, src.config["channels"])
    else:
        state = _add_stages(have, want, src.n_stages, dst.n_stages, getattr(src, "guide_channels", 0))
    dst.load_state_dict(state, strict=True)


def _add_stages(have: dict, want: dict, n_src: int, n_dst: int, g: int) -> dict:
    out = {}
    for key, ref in want.items():
        if key.startswith("decoder."):
            i = int(key.split(".")[1])
            if i < n_src:
                t = have[key]
            elif key.endswith(".bias"):
                t = torch.zeros_like(ref)
            else:
                t = _bilinear_x2(ref)
        elif key == "guide_scale":
            t = torch.cat([have[key], have[key][-1:].repeat(n_dst - n_src)])
        elif key.startswith("guidance.") and have[key].shape != ref.shape:
            # The last guidance convolution: G output channels per decoder stage.
            slices = [have[key][i * g : (i + 1) * g] for i in range(n_src)]
            t = torch.cat(slices + [slices[-1]] * (n_dst - n_src))
        else:
            t = have[key]
        if t.shape != ref.shape:
            raise ValueError(f"{key}: source shape {tuple(t.shape)} cannot fill {tuple(ref.shape)}")
        out[key] = t.clone()
    return out


def _bilinear_x2(ref: torch.Tensor) -> torch.Tensor:
    """Weights (C, C, k, k) of a stride-2 transposed convolution (padding k // 2, output
    padding 1) that upsamples every channel bilinearly by 2 (align_corners=False), the
    channels kept apart."""
    c, c2, k, k2 = ref.shape
    if c != c2 or k != k2 or k < 5:
        raise ValueError(f"no bilinear x2 kernel for weights of shape {tuple(ref.shape)}")
    # Output 2m reads input m (tap p) and m - 1 (tap p + 2); output 2m + 1 reads m (tap p + 1)
    # and m + 1 (tap p - 1), with p = k // 2.
    taps = torch.zeros(k, dtype=ref.dtype)
    p = k // 2
    taps[p - 1], taps[p], taps[p + 1], taps[p + 2] = 0.25, 0.75, 0.75, 0.25
    w = torch.zeros_like(ref)
    for i in range(c):
        w[i, i] = torch.outer(taps, taps)
    return w


def _widen_concat(have: dict, want: dict, c_src: int) -> dict:
    """The fused convolutions ``fused.{0,2,..}`` widen from c_src to the target's width: old
    rows and columns copied, new output rows from ``want`` (random), new input columns zero."""
    out = {}
    fused = sorted(int(k.split(".")[1]) for k in want if k.startswith("fused.") and k.endswith(".weight"))
    for key, ref in want.items():
        t = have[key]
        if t.shape != ref.shape:
            new = ref.clone()
            if key.endswith(".bias"):
                new[:c_src] = t
            else:
                layer = int(key.split(".")[1])
                rows = t.shape[0]
                if layer != fused[0]:  # its inputs are the widened units of the layer before
                    new[:, c_src:] = 0
                new[:rows, : t.shape[1]] = t
            t = new
        out[key] = t.clone()
    return out
