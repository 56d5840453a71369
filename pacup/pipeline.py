"""From numpy arrays to upsampled numpy arrays: the Python API behind the command line.

    out = pacup.upsample_depth(low, guide)          # (H, W) float32, NaN = no information
    uv = pacup.upsample_flow(low_uv, guide)         # (H, W, 2) float32, full-res pixels

What happens, in order (all rules below are part of the API):

1. **Factor and sizes** (:func:`resolve_factor`). The guide must lie within ``factor - 1``
   pixels of ``factor * low`` in each axis (so floor- and ceil-sized low-resolution inputs
   both work). Without ``factor``, the factor is the integer for which that holds (the one
   nearest the size ratio if several do, which happens only for inputs of a few pixels);
   otherwise :class:`InputError` names both sizes. A guide smaller than the input is an
   error. For the network the guide is cropped (bottom/right) or padded by edge
   replication to exactly ``factor * low``; the output is cropped or edge-padded back to
   the guide's size. Factors 2..16 are supported: 2, 4, 8 and 16 natively; any other
   integer runs the network at the next power of two (the guide resized to it bilinearly)
   and resamples the result to ``factor * low`` with antialiased bilinear filtering (this
   needs about (next power of two / factor)^2 times the guide's memory once more).
2. **Valid pixels.** Depth: a pixel is valid when finite and non-zero; flow: when both
   components are finite. A ``valid`` mask (H, W) replaces that rule (non-finite values
   stay invalid). Invalid values are never read.
3. **Normalisation.** Each channel (depth; flow u and v separately) is min-max scaled over
   its valid pixels to [0, 1] (a constant channel is only shifted), the space the networks
   are trained in; the output is mapped back to the input's units. Flow vectors are then
   multiplied by ``factor`` (low-res pixels -> full-res pixels).
4. **Holes.** Invalid low-res pixels are filled before the network: four iterations of a
   mask-aware 5x5 pixel-adaptive average (:func:`pacup.ops.pac_pool2d`, gaussian on the
   guide's colours at low resolution, bandwidth 0.25) propagate valid values from up to
   ``FILL_RADIUS`` = 8 low-res pixels away, following colour edges; anything farther is
   filled by a masked push-pull pyramid only so that the network sees smooth values.
   **NaN rule:** an output pixel is NaN exactly when its low-res pixel
   ``(y // factor, x // factor)`` has no valid low-res sample within ``FILL_RADIUS``
   pixels (Chebyshev distance); when no pixel is valid the whole output is NaN (with a
   warning).
5. **Network, tiled.** The network runs on overlapping tiles of ``tile`` x ``tile``
   low-res pixels plus a margin of the network's ``receptive_radius`` (10 low-res pixels
   for :class:`~pacup.models.PacJointUpsample`) on each side, so tiled and untiled results
   agree to float rounding. ``tile=None`` picks the largest square tile whose full-res area
   (margins included, times the images and channels run together) stays within a pixel
   budget; an image within budget runs whole. On the CPU the budget is 3 * 2**18 (786k)
   full-res pixels: the network's eager forward peaks at about 0.8 KB per full-res pixel,
   and a 3840x2160 x8 depth map measured 1.0 GB (1 thread) to 1.3 GB (2 threads) peak RSS
   (``benchmarks/bench_pipeline.py``). On CUDA it is half the free memory at 2 KiB per
   pixel (1 KiB in fp16), i.e. twice the CPU figure as a margin (not measured on a GPU).
6. **Device and precision.** ``device='auto'`` is CUDA when available, else the CPU.
   ``half=True`` runs the network in fp16 on CUDA; on the CPU it is ignored with a warning
   (fp16 convolutions there are slower and less accurate than fp32). Normalisation, hole
   filling and the output are always float32. Everything runs under
   ``torch.inference_mode()``.

``model`` is None (the registry's default for the task and factor), a registry name, a
path to a ``.safetensors`` file (:func:`pacup.models.save_model`) or an ``nn.Module``. A
module maps ``(low (B, C, h, w) in [0, 1], guide (B, 3, F*h, F*w) RGB in [0, 1]) -> (B, C,
F*h, F*w)``; :class:`~pacup.models.PacJointUpsample` gets the C signal channels at once
(it shares the guidance branch between them), any other module gets one channel per
sample. Optional attributes used when present: ``factor`` (checked) and
``receptive_radius`` (tile margin; 16 when absent). A module given here is put in eval mode
for the call (restored afterwards) and copied, not moved, when it must change device or
dtype.
"""

from __future__ import annotations

import copy
import math
import os
import warnings
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .errors import InputError
from .models import PacJointUpsample, load_model
from .models.network import SUPPORTED_FACTORS
from .ops import pac_pool2d

__all__ = [
    "FILL_RADIUS", "MAX_FACTOR", "resolve_factor", "upsample_depth", "upsample_depth_batch", "upsample_flow",
]

FILL_RADIUS = 8
MAX_FACTOR = max(SUPPORTED_FACTORS)
_FILL_SIGMA = 0.25
_DEFAULT_MARGIN = 16
# Full-res pixels per forward pass (margins included); measured figures in the module doc.
_CPU_PIXEL_BUDGET = 3 << 18
_CUDA_BYTES_PER_PIXEL = {torch.float32: 2048, torch.float16: 1024}


# ----------------------------------------------------------------------------- sizes


def _shape2(shape, what):
    try:
        dims = tuple(int(s) for s in shape)
    except TypeError:
        raise InputError(f"{what} shape must be a tuple of ints, got {shape!r}") from None
    if len(dims) < 2 or min(dims[:2]) < 1:
        raise InputError(f"{what} must have a non-empty height and width, got shape {dims}")
    return dims[0], dims[1]


def _check_factor_value(factor):
    if isinstance(factor, bool) or not isinstance(factor, (int, np.integer)):
        raise InputError(f"factor must be an integer, got {factor!r}")
    factor = int(factor)
    if factor < 2 or factor > MAX_FACTOR:
        raise InputError(f"factor {factor} is not supported: pacup upsamples by 2 to {MAX_FACTOR}")
    return factor


def resolve_factor(low_shape, guide_shape, factor: int | None = None) -> int:
    """The upsampling factor for a low-res input and its guide.

    Args:
        low_shape: (h, w) or (h, w, channels) of the low-resolution input.
        guide_shape: (H, W) or (H, W, 3) of the guide.
        factor: the factor, when known; checked against the sizes.

    Returns:
        The integer factor f (2..16). The guide is within f - 1 pixels of f * low in each axis.

    Raises:
        InputError: guide smaller than the input, size ratios that disagree between the
            axes, no integer ratio, or an unsupported factor; the message names both sizes.

    Example:
        >>> resolve_factor((60, 80), (480, 640))
        8
        >>> resolve_factor((94, 311), (375, 1242))  # KITTI, low = ceil(full / 4)
        4
    """
    h, w = _shape2(low_shape, "low")
    gh, gw = _shape2(guide_shape, "guide")
    sizes = f"input {h}x{w}, guide {gh}x{gw}"
    if gh < h or gw < w:
        raise InputError(f"the guide is smaller than the input ({sizes}): the guide must be the high-resolution image")
    if factor is None:
        ry, rx = gh / h, gw / w
        fits = [f for f in range(2, MAX_FACTOR + 1) if abs(gh - f * h) <= f - 1 and abs(gw - f * w) <= f - 1]
        if fits:
            # Several factors fit only for inputs of a few pixels; take the nearest ratio.
            return min(fits, key=lambda f: (abs(f - (ry + rx) / 2), f))
        fy, fx = math.floor(ry + 0.5), math.floor(rx + 0.5)
        if max(ry, rx) < 1.5:
            raise InputError(f"the guide is not larger than the input ({sizes}): nothing to upsample")
        if fy != fx:
            raise InputError(f"the size ratios differ between the axes ({sizes}: {ry:.3g} vertically, "
                             f"{rx:.3g} horizontally); give the factor or fix the sizes")
        if fy > MAX_FACTOR:
            raise InputError(f"factor {fy} ({sizes}) is not supported: pacup upsamples by 2 to {MAX_FACTOR}")
        raise InputError(f"no integer factor fits ({sizes}): the guide must be within f - 1 pixels of f times "
                         "the input in both axes")
    f = _check_factor_value(factor)
    if abs(gh - f * h) > f - 1 or abs(gw - f * w) > f - 1:
        raise InputError(f"the guide does not match x{f} upsampling ({sizes}; x{f} gives {f * h}x{f * w}, and the "
                         f"guide may differ from that by at most {f - 1} pixels per axis)")
    return f


def _network_factor(f: int) -> int:
    """Smallest supported power of two >= f."""
    return next(n for n in SUPPORTED_FACTORS if n >= f)


# ----------------------------------------------------------------------------- inputs


def _as_guide(guide) -> np.ndarray:
    """(H, W, 3) uint8 or float32 in [0, 1]; greyscale (H, W) or (H, W, 1) is replicated."""
    if isinstance(guide, torch.Tensor):
        guide = guide.detach().cpu().numpy()
    g = np.asarray(guide)
    if g.ndim == 3 and g.shape[2] == 1:
        g = g[:, :, 0]
    if g.ndim == 2:
        g = np.repeat(g[:, :, None], 3, axis=2)
    if g.ndim != 3 or g.shape[2] != 3:
        raise InputError(f"the guide must be an RGB image (H, W, 3) (or greyscale (H, W)), got shape {g.shape}")
    if g.dtype == np.uint8:
        return g
    if not np.issubdtype(g.dtype, np.floating):
        raise InputError(f"the guide must be uint8 or float in [0, 1], got dtype {g.dtype}")
    g = g.astype(np.float32, copy=False)
    if not np.isfinite(g).all():
        raise InputError("the float guide contains NaN or infinite values")
    lo, hi = float(g.min(initial=0.0)), float(g.max(initial=0.0))
    if lo < -1e-3 or hi > 1 + 1e-3:
        raise InputError(f"a float guide must be in [0, 1], got values in [{lo:.4g}, {hi:.4g}] "
                         "(pass uint8 for 0-255 images)")
    return np.clip(g, 0.0, 1.0)


def _as_signal(low, channels: int, what: str) -> np.ndarray:
    """(C, h, w) float64 view of a depth (h, w) or flow (h, w, 2) array."""
    if isinstance(low, torch.Tensor):
        low = low.detach().cpu().numpy()
    a = np.asarray(low)
    if channels == 1 and a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if channels == 1 and a.ndim != 2:
        raise InputError(f"{what} must be a 2-D array (H, W), got shape {a.shape}")
    if channels == 2 and (a.ndim != 3 or a.shape[2] != 2):
        raise InputError(f"{what} must be an array (H, W, 2) of u, v, got shape {a.shape}")
    if not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)) or a.dtype == np.bool_:
        raise InputError(f"{what} must hold numbers, got dtype {a.dtype}")
    a = a.astype(np.float64, copy=False)
    return a[None] if channels == 1 else np.moveaxis(a, 2, 0)


def _valid_mask(sig: np.ndarray, valid, depth: bool) -> np.ndarray:
    finite = np.isfinite(sig).all(axis=0)
    if valid is None:
        return finite & (sig[0] != 0) if depth else finite
    if isinstance(valid, torch.Tensor):
        valid = valid.detach().cpu().numpy()
    v = np.asarray(valid)
    if v.shape != sig.shape[1:]:
        raise InputError(f"valid mask shape {v.shape} does not match the input's {sig.shape[1:]}")
    return v.astype(bool) & finite


# ----------------------------------------------------------------------------- device


def _resolve_device(device) -> torch.device:
    if isinstance(device, torch.device):
        dev = device
    elif device is None or device == "auto":
        dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        try:
            dev = torch.device(device)
        except (RuntimeError, TypeError):
            raise InputError(f"unknown device {device!r}: expected 'auto', 'cpu' or 'cuda'") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device {device!r} was asked for, but CUDA is not available (use 'cpu' or 'auto')")
    if dev.type not in ("cpu", "cuda"):
        raise InputError(f"device {device!r} is not supported: expected 'auto', 'cpu' or 'cuda'")
    return dev


def _resolve_dtype(half: bool, device: torch.device) -> torch.dtype:
    if not half:
        return torch.float32
    if device.type != "cuda":
        warnings.warn("half=True is ignored on the CPU (fp16 convolutions are slower and less accurate there); "
                      "running in float32", UserWarning, stacklevel=4)
        return torch.float32
    return torch.float16


# ----------------------------------------------------------------------------- model


class _Net:
    """The network as the pipeline runs it: module, tile margin, channel handling, and the
    caller's training flag to restore."""

    def __init__(self, module: nn.Module, margin: int, multi_channel: bool, restore_training,
                 ensemble: bool = False):
        self.module, self.margin = module, margin
        self.multi_channel, self._restore = multi_channel, restore_training
        self.ensemble = ensemble

    def _once(self, low: torch.Tensor, guide: torch.Tensor) -> torch.Tensor:
        if self.multi_channel or low.shape[1] == 1:
            return self.module(low, guide)
        b, c, h, w = low.shape
        out = self.module(low.reshape(b * c, 1, h, w), guide.repeat_interleave(c, dim=0))
        return out.reshape(b, c, *out.shape[-2:])

    def __call__(self, low: torch.Tensor, guide: torch.Tensor) -> torch.Tensor:
        if not self.ensemble:
            return self._once(low, guide)
        # Flip ensemble: the mean of the network over the four horizontal / vertical flips
        # of input and guide, each flipped back. Every channel is a scalar map to the
        # network (flow u and v included), so a flip needs no change of sign. Each output
        # pixel still depends only on inputs within the receptive radius: tiles stay exact.
        acc = self._once(low, guide).float()
        for dims in ((-1,), (-2,), (-2, -1)):
            acc += self._once(low.flip(dims), guide.flip(dims)).flip(dims).float()
        return acc.mul_(0.25)

    def close(self):
        if self._restore is not None:
            self.module.train(self._restore)


def _is_onnx(model) -> bool:
    return (isinstance(model, (str, os.PathLike)) and str(model).lower().endswith(".onnx")) or \
        type(model).__name__ == "OnnxBackend"


def _resolve_model(model, task: str, net_factor: int, allow_random: bool, device, dtype, onnx_device="auto",
                   ensemble: bool = False) -> _Net:
    restore = None
    if _is_onnx(model):
        # An exported model runs in ONNX Runtime, which places the data itself: tensors stay
        # on the CPU and ``onnx_device`` picks the execution provider.
        from .onnx import OnnxBackend

        backend = model if isinstance(model, OnnxBackend) else OnnxBackend(model, device=onnx_device)
        if backend.factor is not None and backend.factor != net_factor:
            raise InputError(f"{backend.path} upsamples x{backend.factor}, but this input needs x{net_factor}")
        return _Net(backend, backend.receptive_radius or _DEFAULT_MARGIN, True, None, ensemble)
    if isinstance(model, nn.Module):
        module = model
        mf = getattr(module, "factor", None)
        if mf is not None and int(mf) != net_factor:
            raise InputError(f"the given model upsamples x{mf}, but this input needs a x{net_factor} network")
        params = list(module.parameters()) + list(module.buffers())
        if any(p.device != device or (p.is_floating_point() and p.dtype != dtype) for p in params):
            module = copy.deepcopy(module).to(device=device, dtype=dtype)
        else:
            restore = module.training
        module.eval()
    elif model is None or isinstance(model, (str, os.PathLike)):
        module, entry = load_model(model, task=task, factor=net_factor if model is None else None,
                                   allow_random=allow_random)
        if entry.factor != net_factor:
            raise InputError(f"model {entry.name!r} upsamples x{entry.factor}, but this input needs a x{net_factor} "
                             "network")
        module = module.to(device=device, dtype=dtype)
    else:
        raise InputError(f"model must be None, a registry name, a .safetensors or .onnx path or an nn.Module, "
                         f"got {type(model).__name__}")
    margin = int(getattr(module, "receptive_radius", _DEFAULT_MARGIN))
    return _Net(module, margin, isinstance(module, PacJointUpsample), restore, ensemble)


# ----------------------------------------------------------------------------- holes


def _block_mean_rgb(guide: np.ndarray, f: int, device) -> torch.Tensor:
    """(1, 3, H/f, W/f) float32 block means of an (H, W, 3) guide, in row bands (bounded memory)."""
    h = guide.shape[0] // f
    out = []
    band = max(1, (1 << 22) // max(1, guide.shape[1] * f * 3))
    for y0 in range(0, h, band):
        part = _guide_tensor(guide[y0 * f : min(h, y0 + band) * f], device, torch.float32)
        out.append(F.avg_pool2d(part, f))
    return torch.cat(out, dim=2)


def _push_pull(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """Fills pixels where ``m`` is 0 from a mask-weighted image pyramid (valid pixels kept).
    ``x`` must be 0 where ``m`` is 0; at least one pixel must be valid."""
    if bool(m.all()):
        return x
    h, w = x.shape[-2:]
    num = F.avg_pool2d(x * m, 2, ceil_mode=True)
    den = F.avg_pool2d(m, 2, ceil_mode=True)
    mc = (den > 0).to(x.dtype)
    xc = torch.where(den > 0, num / torch.where(den > 0, den, torch.ones_like(den)), torch.zeros_like(num))
    coarse = _push_pull(xc, mc)
    up = coarse.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)[..., :h, :w]
    return torch.where(m > 0, x, up)


def _fill_holes(x: torch.Tensor, m: torch.Tensor, rgb_low: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Fills invalid pixels of ``x`` (1, C, h, w) (0 where ``m`` (1, 1, h, w) is 0).

    Returns:
        (filled x, reach (h, w) bool: a valid sample lies within FILL_RADIUS pixels).
    """
    if bool(m.all()):
        return x, torch.ones(x.shape[-2:], dtype=torch.bool, device=x.device)
    feats = rgb_low / _FILL_SIGMA
    cur, cm = x, m
    for _ in range(math.ceil(FILL_RADIUS / 2)):
        if bool(cm.all()):
            break
        avg, om = pac_pool2d(cur, feats, 5, padding=2, mask=cm)
        # Pixels already known keep their value; new ones take the colour-weighted average.
        cur = torch.where(cm > 0, cur, avg)
        cm = torch.maximum(cm, om)
    reach = cm[0, 0] > 0
    cur = torch.where(cm > 0, cur, torch.zeros_like(cur))
    return _push_pull(cur, cm), reach


# ----------------------------------------------------------------------------- tiling


def _guide_tensor(g: np.ndarray, device, dtype) -> torch.Tensor:
    """(h, w, 3) uint8/float numpy -> (1, 3, h, w) float tensor in [0, 1]."""
    # A read-only array (np.asarray of a PIL image) is copied: torch warns on those.
    g = np.ascontiguousarray(g) if g.flags.writeable else np.array(g, order="C")
    t = torch.from_numpy(g).to(device)
    t = t.permute(2, 0, 1)[None]
    if t.dtype == torch.uint8:
        return t.to(dtype).div_(255.0)
    return t.to(dtype)


def _auto_tile(h, w, nf, margin, n_items, device, dtype) -> int:
    """Interior tile size (low-res pixels) under the pixel budget (see the module doc)."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        budget = free // 2 // _CUDA_BYTES_PER_PIXEL[dtype]
    else:
        budget = _CPU_PIXEL_BUDGET
    budget = max(1, budget // n_items)
    if h * w * nf * nf <= budget:
        return max(h, w)
    side = int(math.isqrt(budget) // nf) - 2 * margin
    # Never below the margin itself: smaller tiles would spend most of their work on overlap.
    return max(side, margin, 1)


def _tiles(n, t):
    return [(a, min(n, a + t)) for a in range(0, n, t)]


def _run_tiled(net: _Net, x: torch.Tensor, guides: list, nf: int, tile, device, dtype) -> torch.Tensor:
    """Runs the network on (B, C, h, w) normalised input with guides (nf*h, nf*w, 3) each.

    Returns:
        (B, C, nf*h, nf*w) float32 on the CPU.
    """
    b, c, h, w = x.shape
    m = net.margin
    t = _auto_tile(h, w, nf, m, b * c, device, dtype) if tile is None else tile
    out = torch.empty(b, c, h * nf, w * nf, dtype=torch.float32)
    for y0, y1 in _tiles(h, t):
        ys, ye = max(0, y0 - m), min(h, y1 + m)
        for x0, x1 in _tiles(w, t):
            xs, xe = max(0, x0 - m), min(w, x1 + m)
            g = torch.cat([_guide_tensor(gd[ys * nf : ye * nf, xs * nf : xe * nf], device, dtype) for gd in guides])
            xt = x[:, :, ys:ye, xs:xe].to(device=device, dtype=dtype)
            y = net(xt, g)
            oy, ox = (y0 - ys) * nf, (x0 - xs) * nf
            out[:, :, y0 * nf : y1 * nf, x0 * nf : x1 * nf] = (
                y[:, :, oy : oy + (y1 - y0) * nf, ox : ox + (x1 - x0) * nf].float().cpu()
            )
            del g, xt, y
    return out


# ----------------------------------------------------------------------------- items


@dataclass
class _Item:
    """One prepared input: normalised, filled signal and what is needed to map back."""

    x: torch.Tensor  # (1, C, h, w) float32, normalised and filled
    lo: np.ndarray  # (C,) per-channel minimum
    scale: np.ndarray  # (C,) per-channel max - min (1 where constant)
    reach: np.ndarray | None  # (h, w) bool, None when every pixel is reached
    guide: np.ndarray  # (nf*h, nf*w, 3) network guide
    factor: int
    net_factor: int
    out_hw: tuple[int, int]
    any_valid: bool


def _fit(a: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """Crops (bottom/right) or edge-pads the first two axes of ``a`` to ``hw``."""
    a = a[: hw[0], : hw[1]]
    ph, pw = hw[0] - a.shape[0], hw[1] - a.shape[1]
    if ph or pw:
        a = np.pad(a, [(0, ph), (0, pw)] + [(0, 0)] * (a.ndim - 2), mode="edge")
    return a


def _prepare(low, guide, factor, valid, task: str, device) -> _Item:
    channels = 1 if task == "depth" else 2
    what = "the depth input" if task == "depth" else "the flow input"
    sig = _as_signal(low, channels, what)
    g = _as_guide(guide)
    f = resolve_factor(sig.shape[1:], g.shape[:2], factor)
    nf = _network_factor(f)
    h, w = sig.shape[1:]
    m = _valid_mask(sig, valid, depth=task == "depth")
    g_f = _fit(g, (f * h, f * w))
    if nf != f:
        # Non-power-of-two factor: the network runs at nf on the guide resampled to nf * low.
        gt = _guide_tensor(g_f, "cpu", torch.float32)
        g_net = F.interpolate(gt, size=(nf * h, nf * w), mode="bilinear", align_corners=False)
        g_net = g_net[0].permute(1, 2, 0).clamp_(0, 1).numpy()
    else:
        g_net = g_f
    lo = np.zeros(channels)
    scale = np.ones(channels)
    any_valid = bool(m.any())
    if any_valid:
        for ch in range(channels):
            vals = sig[ch][m]
            lo[ch], hi = float(vals.min()), float(vals.max())
            scale[ch] = hi - lo[ch] if hi > lo[ch] else 1.0
    # Invalid pixels become 0 here and are never read again (NaN * 0 would still be NaN).
    xn = np.where(m[None], (sig - lo[:, None, None]) / scale[:, None, None], 0.0).astype(np.float32)
    x = torch.from_numpy(xn)[None].to(device)
    mt = torch.from_numpy(m)[None, None].to(device=device, dtype=torch.float32)
    reach = None
    if any_valid and not m.all():
        x, reach_t = _fill_holes(x, mt, _block_mean_rgb(g_f, f, device))
        reach = None if bool(reach_t.all()) else reach_t.cpu().numpy()
    return _Item(x.cpu(), lo, scale, reach, g_net, f, nf, (g.shape[0], g.shape[1]), any_valid)


def _finish(item: _Item, y: torch.Tensor, task: str) -> np.ndarray:
    """Network output (C, nf*h, nf*w) -> the user's units and the guide's size, NaN applied."""
    f, nf = item.factor, item.net_factor
    c = y.shape[0]
    h, w = item.x.shape[-2:]
    if nf != f:
        y = F.interpolate(y[None], size=(f * h, f * w), mode="bilinear", align_corners=False, antialias=True)[0]
    # In place, in float32: a 4K output costs 33 MB per copy.
    out = y.numpy()
    gain = item.scale * (f if task == "flow" else 1)
    offset = item.lo * (f if task == "flow" else 1)
    out *= gain.astype(np.float32)[:, None, None]
    out += offset.astype(np.float32)[:, None, None]
    if item.reach is not None:
        far = ~np.repeat(np.repeat(item.reach, f, axis=0), f, axis=1)
        out[:, far] = np.nan
    out = np.moveaxis(out, 0, 2)  # (fh, fw, C)
    out = _fit(out, item.out_hw)
    return np.ascontiguousarray(out[:, :, 0] if c == 1 else out)


def _nan_output(item: _Item, task: str) -> np.ndarray:
    warnings.warn(f"the {task} input has no valid pixel: the output is all NaN", UserWarning, stacklevel=4)
    shape = item.out_hw if task == "depth" else (*item.out_hw, 2)
    return np.full(shape, np.nan, np.float32)


def _check_options(tile, batch_size):
    if tile is not None and (isinstance(tile, bool) or not isinstance(tile, (int, np.integer)) or tile < 1):
        raise InputError(f"tile must be None (automatic) or a positive number of low-res pixels, got {tile!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise InputError(f"batch_size must be a positive integer, got {batch_size!r}")


def _upsample(task, lows, guides, factor, model, device, valid, tile, half, allow_random, batch_size,
              ensemble=False):
    _check_options(tile, batch_size)
    if len(lows) != len(guides):
        raise InputError(f"got {len(lows)} inputs but {len(guides)} guides")
    valids = [None] * len(lows) if valid is None else list(valid)
    if len(valids) != len(lows):
        raise InputError(f"got {len(lows)} inputs but {len(valids)} valid masks")
    dev = torch.device("cpu") if _is_onnx(model) else _resolve_device(device)
    dtype = _resolve_dtype(half, dev)
    results: list = [None] * len(lows)
    with torch.no_grad():
        items = [_prepare(lo, g, factor, v, task, dev) for lo, g, v in zip(lows, guides, valids)]
    groups: dict = {}
    for i, it in enumerate(items):
        if not it.any_valid:
            results[i] = _nan_output(it, task)
        else:
            groups.setdefault((tuple(it.x.shape), it.guide.shape, it.factor, it.net_factor), []).append(i)
    # Models are built outside inference mode: parameters made inside it could not be
    # loaded into or copied later.
    nets: dict = {}
    try:
        for (_, _, _, nf), _ in groups.items():
            if nf not in nets:
                nets[nf] = _resolve_model(model, task, nf, allow_random, dev, dtype, onnx_device=device,
                                          ensemble=bool(ensemble))
        with torch.inference_mode():
            for (_, _, _, nf), idx in groups.items():
                for k in range(0, len(idx), batch_size):
                    chunk = idx[k : k + batch_size]
                    x = torch.cat([items[i].x for i in chunk])
                    y = _run_tiled(nets[nf], x, [items[i].guide for i in chunk], nf, tile, dev, dtype)
                    for j, i in enumerate(chunk):
                        results[i] = _finish(items[i], y[j], task)
    finally:
        for net in nets.values():
            net.close()
    return results


# ----------------------------------------------------------------------------- public API


def upsample_depth(low, guide, factor: int | None = None, model=None, device="auto", valid=None,
                   tile: int | None = None, half: bool = False, allow_random: bool = False,
                   batch_size: int = 4, ensemble: bool = False) -> np.ndarray:
    """Upsample a depth map guided by an RGB image.

    Args:
        low: (h, w) depth in any units; 0, NaN and inf are invalid unless ``valid`` is given.
        guide: (H, W, 3) uint8 RGB, or float in [0, 1]; greyscale (H, W) is accepted.
        factor: upsampling factor 2..16; by default the size ratio (see :func:`resolve_factor`).
        model: None (registry default), a registry name, a ``.safetensors`` path or a module.
        device: ``'auto'``, ``'cpu'`` or ``'cuda'``.
        valid: optional (h, w) bool mask of usable input pixels.
        tile: interior tile size in low-res pixels; None chooses one (module doc, step 5).
        half: fp16 on CUDA (ignored with a warning on the CPU).
        allow_random: run with random weights when no trained weights exist (warns).
        batch_size: most images per forward pass (used by :func:`upsample_depth_batch`;
            a single image is one).
        ensemble: average the network over the four flips of input and guide (four times
            the network time; a few per cent lower error, see weights/README.md).

    Returns:
        (H, W) float32 depth in the input's units; NaN where no valid input lies within
        ``FILL_RADIUS`` low-res pixels.

    Raises:
        InputError: bad shapes, sizes, factor, options or device.
        ModelNotAvailableError: no trained weights and not ``allow_random``.
        ModelFileError: a weight file that is missing, corrupt or not a pacup model.

    Example:
        >>> out = upsample_depth(np.ones((8, 8)), np.zeros((32, 32, 3), np.uint8), allow_random=True)
        >>> out.shape
        (32, 32)
    """
    return _upsample("depth", [low], [guide], factor, model, device, None if valid is None else [valid],
                     tile, half, allow_random, batch_size, ensemble)[0]


def upsample_depth_batch(lows: list, guides: list, factor: int | None = None, model=None, device="auto",
                         valid: list | None = None, tile: int | None = None, half: bool = False,
                         allow_random: bool = False, batch_size: int = 4, ensemble: bool = False) -> list[np.ndarray]:
    """:func:`upsample_depth` for many images; inputs of the same size run ``batch_size`` at
    a time through the network. ``valid`` is None or a list (None entries allowed).

    Returns:
        One (H, W) float32 array per input, in order; identical to separate calls.
    """
    return _upsample("depth", list(lows), list(guides), factor, model, device, valid, tile, half,
                     allow_random, batch_size, ensemble)


def upsample_flow(low, guide, factor: int | None = None, model=None, device="auto", valid=None,
                  tile: int | None = None, half: bool = False, allow_random: bool = False,
                  ensemble: bool = False) -> np.ndarray:
    """Upsample an optical-flow field guided by an RGB image (of the flow's source frame).

    u and v are normalised separately and go through the network as two 1-channel maps
    sharing the guide; the vectors are multiplied by ``factor``.

    Args:
        low: (h, w, 2) flow (u right, v down) in low-res pixels; a pixel is invalid when a
            component is NaN or inf, unless ``valid`` is given.
        Other arguments: as :func:`upsample_depth`.

    Returns:
        (H, W, 2) float32 flow in full-resolution pixels; NaN (both components) where no
        valid input lies within ``FILL_RADIUS`` low-res pixels.
    """
    return _upsample("flow", [low], [guide], factor, model, device, None if valid is None else [valid],
                     tile, half, allow_random, 1, ensemble)[0]
