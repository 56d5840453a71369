"""The joint upsampling network (PacJointUpsample).

Structure (Su et al., CVPR 2019, as summarised in ANCHORS.md), for ``factor = 2**n``:

- target branch on the low-resolution signal (B, 1, h, w): three kxk convolutions
  1 -> C -> C -> C with ReLU between them;
- guidance branch on the full-resolution RGB (B, 3, H, W): three kxk convolutions
  3 -> C -> C -> G*n with ReLU between them, cut into n slices of G channels;
- decoder: n ``PacConvTranspose2d(C, C, k, stride=2, padding=k//2, output_padding=1)``,
  stage i (output size h*2**(i+1)) adapted by slice i average-pooled by 2**(n-1-i) to that
  size (exact, since H = factor*h), ReLU after each; then two kxk convolutions C -> C -> 1
  with ReLU between them.

``variant='full'`` is C = 32, G = 16, k = 5 (183,489 / 221,937 / 260,385 parameters for
x4 / x8 / x16 without the guide scale, matching the published ~183k / 222k / 260k);
``variant='lite'`` is C = 16, G = 16 (53,361 / 66,193 / 79,025; ANCHORS gives ~56k without
naming the factor, x4 is within 5 %).

Departures from the published structure, all optional:

- ``guide_scale`` (default 4.0): one learnable scalar per decoder stage multiplying that
  stage's guidance slice before the gaussian ``K = exp(-0.5 ||f_p - f_q||^2)``. With
  PyTorch's default init the guidance features are so small that K is ~0.9995 everywhere,
  so K carries almost no gradient to the guidance branch; a scale s multiplies every
  squared feature distance by s**2 and gives K a useful spread from the first step.
  ``guide_scale=None`` removes it (the published structure). Measured at init (x8, four
  128x128 synthetic rooms, seed 0, MSE against the ground truth; gradient norm of the
  guidance branch / that of the target branch): none 0.0037, s=3 0.027, s=4 0.041,
  s=8 0.095, s=16 0.34; mean K between horizontal full-resolution neighbours 1.000, 0.996,
  0.993, 0.975, 0.924. 4 is a start that keeps K near 1 inside regions; it is learned.
- ``residual=True``: the network predicts a residual added to bicubic upsampling of the
  input instead of the signal itself (off until a training run shows it helps).
- ``guide_pyramid`` (default False, as published): stage i's guidance slice is computed by
  the same guidance convolutions on the guide average-pooled to that stage's output size
  (only slice i of the last convolution), instead of being computed at full resolution and
  pooled afterwards. Same parameters; a stage pooled by p then sees a p times wider
  neighbourhood of the guide (13*p full-resolution pixels for k = 5) rather than 13 pixels,
  as the network does when it runs at 1/p of the size. Motivation: depth-x8 run at half size
  and then a joint bilateral x2 step beat every direct x16 network on the motorcycle.
- ``negative_slope`` (default 0, ReLU as published): every hidden activation becomes a
  leaky ReLU with that slope. With ReLU a residual network can fall into a state it never
  leaves: the target branch's second layer dies (no unit above zero for any input), the
  output no longer depends on the low-resolution signal, and the best it can then do is
  bicubic. Measured in the full-width flow x4 run with seed 1 (one of its 32 units ever
  positive on random inputs, against seven in seed 0's healthy run); the ReLU flow x16 runs
  sat on the same bicubic plateau. A leaky unit still passes a gradient when it is below
  zero, so that state is not absorbing (the same seed with slope 0.1 did not collapse).

Inputs and outputs live in the per-image normalised space the pipeline prepares
(:mod:`pacup.pipeline`): the low-resolution signal min-max scaled to [0, 1] and the guide as
float RGB in [0, 1].
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InputError
from ..ops import PacConvTranspose2d

__all__ = ["PacJointUpsample", "SUPPORTED_FACTORS", "VARIANTS", "build_model", "count_parameters"]

SUPPORTED_FACTORS = (2, 4, 8, 16)

# Widths per variant: C (target / decoder channels) and G (guidance channels per stage).
VARIANTS = {
    "full": {"channels": 32, "guide_channels": 16},
    "lite": {"channels": 16, "guide_channels": 16},
}

DEFAULT_GUIDE_SCALE = 4.0


def _conv(cin, cout, k):
    return nn.Conv2d(cin, cout, k, padding=k // 2)


def check_negative_slope(value) -> float:
    """``value`` as a float if it is a number in [0, 1), else InputError."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise InputError(f"negative_slope must be a number in [0, 1), got {value!r}")
    return float(value)


def _act(negative_slope: float, inplace: bool = False) -> nn.Module:
    """ReLU (slope 0, so that the published structure exports as plain ``Relu``) or leaky ReLU."""
    if negative_slope == 0:
        return nn.ReLU(inplace=inplace)
    return nn.LeakyReLU(negative_slope, inplace=inplace)


class PacJointUpsample(nn.Module):
    """RGB-guided joint upsampling network with transposed pixel-adaptive convolutions.

    Args:
        factor: upsampling factor, one of 2, 4, 8, 16.
        variant: ``'full'`` (C=32) or ``'lite'`` (C=16); sets the default widths.
        residual: predict a residual over bicubic upsampling of the input.
        guide_scale: initial value of the learnable per-stage scale of the guidance
            features, or None for none (the published structure).
        channels: override C (target branch, decoder, first output conv).
        guide_channels: override G (guidance channels per decoder stage).
        kernel_size: odd spatial size of every convolution (5 in the paper).
        negative_slope: slope of every hidden activation below zero, in [0, 1): 0 is ReLU
            (the paper); see the module doc for why a run may want a leaky one.

    Shapes:
        ``forward(low (B, Cs, h, w), guide (B, 3, factor*h, factor*w)) -> (B, Cs, factor*h,
        factor*w)``. Each of the Cs signal channels (1 for depth, 2 for flow u/v) goes
        through the network as its own 1-channel map; the guidance branch runs once per
        image and is shared by them.

    Attributes:
        config: plain dict of constructor arguments; ``PacJointUpsample(**config)`` (or
            :func:`build_model`) rebuilds the architecture.
        receptive_radius: low-resolution pixels beyond which an input sample cannot affect
            an output pixel (used by the pipeline as its tile margin).

    Example:
        >>> net = PacJointUpsample(4)
        >>> net(torch.rand(1, 1, 16, 16), torch.rand(1, 3, 64, 64)).shape
        torch.Size([1, 1, 64, 64])
    """

    def __init__(self, factor: int, variant: str = "full", residual: bool = False,
                 guide_scale: float | None = DEFAULT_GUIDE_SCALE, channels: int | None = None,
                 guide_channels: int | None = None, kernel_size: int = 5, negative_slope: float = 0.0,
                 guide_pyramid: bool = False):
        super().__init__()
        if isinstance(factor, bool) or not isinstance(factor, int) or factor not in SUPPORTED_FACTORS:
            raise InputError(f"PacJointUpsample factor must be one of {SUPPORTED_FACTORS}, got {factor!r}")
        if variant not in VARIANTS:
            raise InputError(f"unknown variant {variant!r}: expected one of {sorted(VARIANTS)}")
        if not isinstance(kernel_size, int) or kernel_size < 1 or kernel_size % 2 == 0:
            raise InputError(f"kernel_size must be a positive odd integer, got {kernel_size!r}")
        widths = VARIANTS[variant]
        c = int(channels if channels is not None else widths["channels"])
        g = int(guide_channels if guide_channels is not None else widths["guide_channels"])
        if c < 1 or g < 1:
            raise InputError(f"channels and guide_channels must be positive, got {c} and {g}")
        if guide_scale is not None and not float(guide_scale) > 0:
            raise InputError(f"guide_scale must be positive or None, got {guide_scale!r}")
        k = kernel_size
        s = self.negative_slope = check_negative_slope(negative_slope)
        self.factor = factor
        self.n_stages = int(math.log2(factor))
        self.guide_channels = g
        self.residual = bool(residual)
        self.guide_pyramid = bool(guide_pyramid)
        self.config = {
            "arch": "PacJointUpsample", "factor": factor, "variant": variant, "residual": self.residual,
            "guide_scale": None if guide_scale is None else float(guide_scale),
            "channels": c, "guide_channels": g, "kernel_size": k, "negative_slope": s,
        }
        if self.guide_pyramid:
            # Only when set, so that the configs (and files) of networks without it are unchanged.
            self.config["guide_pyramid"] = True

        self.target = nn.Sequential(_conv(1, c, k), _act(s), _conv(c, c, k), _act(s), _conv(c, c, k))
        self.guidance = nn.Sequential(_conv(3, c, k), _act(s), _conv(c, c, k), _act(s),
                                      _conv(c, g * self.n_stages, k))
        self.decoder = nn.ModuleList(
            PacConvTranspose2d(c, c, k, stride=2, padding=k // 2, output_padding=1) for _ in range(self.n_stages)
        )
        # In-place ReLUs after convolutions: their backward never needs the overwritten
        # output, and inference at full resolution saves one C-channel map each.
        self.head = nn.Sequential(_conv(c, c, k), _act(s, inplace=True), _conv(c, 1, k))
        if guide_scale is None:
            self.guide_scale = None
        else:
            self.guide_scale = nn.Parameter(torch.full((self.n_stages,), float(guide_scale)))
        self.receptive_radius = self._receptive_radius(k // 2)

    def _receptive_radius(self, r: int) -> int:
        """Conservative dependency radius in low-resolution pixels (see the class doc)."""
        n = self.n_stages
        d = 2 * r  # the head's two convolutions, in full-resolution pixels
        guide_reach = 0.0
        for j in range(n, 0, -1):
            # Stage j (level j-1 -> j): output p reads samples q with |p - 2q| <= r and the
            # guide slice at p and at those samples' positions 2q.
            g = d + r
            pool = 2 ** (n - j)
            if self.guide_pyramid:
                # The guidance convolutions run on the guide pooled by `pool`: 3r pooled pixels.
                reach = (g + 3 * r + 1) * pool
            else:
                reach = (g + 1) * pool + 3 * r
            guide_reach = max(guide_reach, reach / self.factor)
            d = math.ceil((d + r) / 2)
        low_reach = d + 3 * r
        if self.residual:
            low_reach = max(low_reach, 2)  # bicubic taps
        return int(math.ceil(max(low_reach, guide_reach))) + 1

    def guide_features(self, guide: torch.Tensor) -> list[torch.Tensor]:
        """Guidance slice per decoder stage, pooled to that stage's output size and scaled.

        Args:
            guide: (B, 3, H, W) RGB in [0, 1] at the output resolution.

        Returns:
            n tensors (B, G, H / 2**(n-1-i), W / 2**(n-1-i)), i = 0 .. n-1.
        """
        g, n = self.guide_channels, self.n_stages
        if self.guide_pyramid:
            *body, last = self.guidance
            body = nn.Sequential(*body)
        else:
            feats = self.guidance(guide)
        out = []
        for i in range(n):
            pool = 2 ** (n - 1 - i)
            if self.guide_pyramid:
                x = F.avg_pool2d(guide, pool) if pool > 1 else guide
                sl = slice(i * g, (i + 1) * g)
                f = F.conv2d(body(x), last.weight[sl], last.bias[sl], padding=last.padding)
            else:
                f = feats[:, i * g : (i + 1) * g]
                if pool > 1:
                    f = F.avg_pool2d(f, pool)
            if self.guide_scale is not None:
                f = f * self.guide_scale[i]
            out.append(f)
        return out

    def forward(self, low: torch.Tensor, guide: torch.Tensor) -> torch.Tensor:
        """Upsample ``low`` (B, Cs, h, w) guided by ``guide`` (B, 3, factor*h, factor*w).

        Returns:
            (B, Cs, factor*h, factor*w) in the same normalised space as ``low``.
        """
        if low.dim() != 4 or guide.dim() != 4:
            raise InputError(f"expected 4-D low (B, C, h, w) and guide (B, 3, H, W), got {tuple(low.shape)} "
                             f"and {tuple(guide.shape)}")
        b, cs, h, w = low.shape
        f = self.factor
        if guide.shape[0] != b or guide.shape[1] != 3 or guide.shape[2] != h * f or guide.shape[3] != w * f:
            raise InputError(f"guide must be (B={b}, 3, {h * f}, {w * f}) for low {tuple(low.shape)} at x{f}, "
                             f"got {tuple(guide.shape)}")
        # Channels-last: oneDNN runs these convolutions about twice as fast and without the
        # reorder copies that double their memory at full resolution (cuDNN prefers it too).
        feats = self.guide_features(guide.contiguous(memory_format=torch.channels_last))
        x = low.reshape(b * cs, 1, h, w)
        if cs > 1:
            # u and v (or any channels) are separate samples that share their image's guide.
            feats = [t.repeat_interleave(cs, dim=0) for t in feats]
        y = self.target(x)
        for up, t in zip(self.decoder, feats):
            y = self.activate(up(y, t))
        y = self.head(y.contiguous(memory_format=torch.channels_last))
        if self.residual:
            y = y + F.interpolate(x, size=(h * f, w * f), mode="bicubic", align_corners=False)
        return y.reshape(b, cs, h * f, w * f)

    def activate(self, y: torch.Tensor) -> torch.Tensor:
        """The hidden activation after a decoder stage, in place (ReLU or leaky ReLU)."""
        if self.negative_slope == 0:
            return F.relu(y, inplace=True)
        return F.leaky_relu(y, self.negative_slope, inplace=True)

    def extra_repr(self) -> str:
        cfg = self.config
        return (f"factor={self.factor}, variant={cfg['variant']!r}, channels={cfg['channels']}, "
                f"guide_channels={cfg['guide_channels']}, residual={self.residual}, guide_scale={cfg['guide_scale']}"
                + (f", negative_slope={self.negative_slope}" if self.negative_slope else "")
                + (", guide_pyramid=True" if self.guide_pyramid else ""))


_ARCHS = {"PacJointUpsample": PacJointUpsample}


def build_model(config: dict) -> nn.Module:
    """Rebuild an architecture (random weights) from its ``config`` dict.

    Raises:
        InputError: unknown ``arch`` or bad arguments.
    """
    if not isinstance(config, dict):
        raise InputError(f"model config must be a dict, got {type(config).__name__}")
    cfg = dict(config)
    arch = cfg.pop("arch", "PacJointUpsample")
    if arch not in _ARCHS:
        raise InputError(f"unknown model architecture {arch!r}: expected one of {sorted(_ARCHS)}")
    try:
        return _ARCHS[arch](**cfg)
    except TypeError as exc:
        raise InputError(f"bad {arch} config {config!r}: {exc}") from None


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameter elements."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
