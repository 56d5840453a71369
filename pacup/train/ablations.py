"""Ablation networks that tell whether pixel-adaptive convolutions earn their keep.

- :class:`PacJointUpsampleK1` (``ablation='k1'``): :class:`~pacup.models.PacJointUpsample`
  with K = 1, i.e. every ``PacConvTranspose2d`` replaced by ``nn.ConvTranspose2d`` of the same
  shape (with K = 1 and no normalisation the two are the same operation for the same weight
  tensor; :mod:`pacup.ops.functional`). The guide then cannot reach the output, so the
  guidance branch and the guide scale are dropped (they would be dead parameters): it is the
  same target branch, decoder and head, unguided.
- :class:`ConcatJointUpsample` (``ablation='concat'``): a plain CNN at full resolution that
  concatenates RGB features with features of the bicubic-upsampled signal (DJF-style early
  fusion), widths chosen by :func:`build_ablation` so that the parameter count is within a
  few per cent of the PAC network it is compared with. ``residual=True`` (default) adds the
  bicubic upsampling to the output: the usual, stronger form of such networks.

Both take and return what ``PacJointUpsample`` does (``forward(low (B, Cs, h, w), guide
(B, 3, F*h, F*w)) -> (B, Cs, F*h, F*w)``, normalised space), carry a ``config`` dict (so
:func:`pacup.models.save_model` writes them) and are loaded back by :func:`load_any_model`.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..models import PacJointUpsample, count_parameters, load_model
from ..models.network import _act, check_negative_slope

__all__ = ["ABLATIONS", "ConcatJointUpsample", "PacJointUpsampleK1", "build_ablation", "build_network",
           "load_any_model"]

ABLATIONS = ("k1", "concat")


class PacJointUpsampleK1(PacJointUpsample):
    """PacJointUpsample with K = 1: plain transposed convolutions, no guidance (module doc).

    Args: as :class:`~pacup.models.PacJointUpsample` (``guide_scale`` is accepted and
    ignored, so configs stay interchangeable).
    """

    def __init__(self, factor: int, variant: str = "full", residual: bool = False, guide_scale=None,
                 channels: int | None = None, guide_channels: int | None = None, kernel_size: int = 5,
                 negative_slope: float = 0.0):
        super().__init__(factor, variant, residual, None, channels, guide_channels, kernel_size, negative_slope)
        c, k = self.config["channels"], kernel_size
        self.decoder = nn.ModuleList(
            nn.ConvTranspose2d(c, c, k, stride=2, padding=k // 2, output_padding=1) for _ in range(self.n_stages)
        )
        del self.guidance
        self.config = dict(self.config, arch="PacJointUpsampleK1", guide_scale=None)

    def forward(self, low: torch.Tensor, guide: torch.Tensor | None = None) -> torch.Tensor:
        b, cs, h, w = low.shape
        f = self.factor
        if guide is not None and (guide.shape[0] != b or guide.shape[-2:] != (h * f, w * f)):
            raise ValueError(f"guide {tuple(guide.shape)} does not fit low {tuple(low.shape)} at x{f}")
        x = low.reshape(b * cs, 1, h, w)
        y = self.target(x)
        for up in self.decoder:
            y = self.activate(up(y))
        y = self.head(y)
        if self.residual:
            y = y + F.interpolate(x, size=(h * f, w * f), mode="bicubic", align_corners=False)
        return y.reshape(b, cs, h * f, w * f)


def _conv(cin, cout, k):
    return nn.Conv2d(cin, cout, k, padding=k // 2)


class ConcatJointUpsample(nn.Module):
    """Early-fusion CNN: ``head(concat(rgb_branch(guide), signal_branch(bicubic(low))))``.

    Args:
        factor: upsampling factor (any integer >= 1).
        channels: width of the fused layers.
        guide_channels: width of the RGB and signal branches.
        layers: number of fused kxk convolutions before the final one (>= 1).
        residual: add the bicubic upsampling to the output.
        kernel_size: odd size of every convolution.
        negative_slope: slope of the hidden activations below zero (0: ReLU), as the PAC
            network it is compared with.

    Shapes: as :class:`~pacup.models.PacJointUpsample`; every signal channel runs as its own
    1-channel map sharing the RGB features.
    """

    def __init__(self, factor: int, channels: int = 24, guide_channels: int = 16, layers: int = 2,
                 residual: bool = True, kernel_size: int = 5, variant: str | None = None,
                 negative_slope: float = 0.0):
        super().__init__()
        if int(factor) != factor or factor < 1:
            raise ValueError(f"factor must be a positive integer, got {factor!r}")
        if layers < 1 or kernel_size % 2 == 0:
            raise ValueError("layers must be >= 1 and kernel_size odd")
        k, c, g, s = kernel_size, int(channels), int(guide_channels), check_negative_slope(negative_slope)
        self.factor = int(factor)
        self.residual = bool(residual)
        self.config = {"arch": "ConcatJointUpsample", "factor": self.factor, "channels": c, "guide_channels": g,
                       "layers": int(layers), "residual": self.residual, "kernel_size": k, "variant": variant,
                       "negative_slope": s}
        self.rgb = nn.Sequential(_conv(3, g, k), _act(s), _conv(g, g, k), _act(s))
        self.signal = nn.Sequential(_conv(1, g, k), _act(s), _conv(g, g, k), _act(s))
        fused = [_conv(2 * g, c, k), _act(s)]
        for _ in range(layers - 1):
            fused += [_conv(c, c, k), _act(s)]
        fused.append(_conv(c, 1, k))
        self.fused = nn.Sequential(*fused)
        # Dependency radius in low-res pixels, for the pipeline's tiles: bicubic (2 px) plus
        # every kxk convolution's reach at full resolution.
        n_convs = 2 + layers + 1
        self.receptive_radius = int(2 + -(-n_convs * (k // 2) // self.factor) + 1)

    def forward(self, low: torch.Tensor, guide: torch.Tensor) -> torch.Tensor:
        b, cs, h, w = low.shape
        f = self.factor
        if guide.shape[0] != b or guide.shape[1] != 3 or guide.shape[-2:] != (h * f, w * f):
            raise ValueError(f"guide {tuple(guide.shape)} does not fit low {tuple(low.shape)} at x{f}")
        x = low.reshape(b * cs, 1, h, w)
        up = F.interpolate(x, size=(h * f, w * f), mode="bicubic", align_corners=False)
        fr = self.rgb(guide)
        if cs > 1:
            fr = fr.repeat_interleave(cs, dim=0)
        y = self.fused(torch.cat([fr, self.signal(up)], dim=1))
        if self.residual:
            y = y + up
        return y.reshape(b, cs, h * f, w * f)


_ARCHS = {"PacJointUpsampleK1": PacJointUpsampleK1, "ConcatJointUpsample": ConcatJointUpsample}


def build_ablation(ablation: str, factor: int, variant: str = "lite", residual: bool | None = None,
                   **kw) -> nn.Module:
    """The ablation network matched to ``PacJointUpsample(factor, variant)``.

    ``'k1'``: same widths, K = 1. ``'concat'``: ``channels`` chosen so that the parameter
    count is the closest to the PAC network's (``count_parameters``); ``residual`` defaults
    to False for ``'k1'`` (as the PAC network) and True for ``'concat'``.
    """
    if ablation == "k1":
        return PacJointUpsampleK1(factor, variant, residual=bool(residual), **kw)
    if ablation == "concat":
        target = count_parameters(PacJointUpsample(factor, variant))
        res = True if residual is None else bool(residual)
        best = None
        for c in range(4, 129):
            n = count_parameters(ConcatJointUpsample(factor, channels=c, residual=res, variant=variant, **kw))
            if best is None or abs(n - target) < abs(best[1] - target):
                best = (c, n)
        return ConcatJointUpsample(factor, channels=best[0], residual=res, variant=variant, **kw)
    raise ValueError(f"unknown ablation {ablation!r}: expected one of {ABLATIONS}")


def build_network(config: dict) -> nn.Module:
    """Any architecture by its config: the ablations here, or a pacup model."""
    cfg = dict(config)
    arch = cfg.pop("arch", "PacJointUpsample")
    if arch in _ARCHS:
        return _ARCHS[arch](**cfg)
    from ..models import build_model

    return build_model(config)


def load_any_model(spec, task: str | None = None, factor: int | None = None) -> nn.Module:
    """Load a network by registry name or ``.safetensors`` path, the ablation architectures
    included (eval mode, CPU)."""
    if isinstance(spec, nn.Module):
        return spec
    path = Path(str(spec))
    if path.suffix == ".safetensors" and path.is_file():
        from safetensors.torch import safe_open

        with safe_open(str(path), framework="pt", device="cpu") as fh:
            meta = fh.metadata() or {}
            if "config" in meta and json.loads(meta["config"]).get("arch") in _ARCHS:
                model = build_network(json.loads(meta["config"]))
                model.load_state_dict({k: fh.get_tensor(k) for k in fh.keys()}, strict=True)
                if factor is not None and model.factor != factor:
                    raise ValueError(f"{path}: model upsamples x{model.factor}, but x{factor} is needed")
                return model.eval()
    model, _ = load_model(str(spec), task=task, factor=factor)
    return model
