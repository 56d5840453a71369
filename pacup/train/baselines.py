"""Classical guided-upsampling baselines: bicubic, joint bilateral (JBU) and guided filter.

Every function takes numpy arrays the way :func:`pacup.train.degrade.degrade` makes them:

- ``low``: float (h, w) or (h, w, C) low-resolution signal (depth, disparity or one flow
  component per channel); values at invalid pixels are ignored;
- ``low_valid``: optional bool (h, w); None means all valid;
- ``guide``: (h*factor, w*factor, 3) RGB, uint8 or float in [0, 1];
- returns float32 (h*factor, w*factor[, C]), defined everywhere (holes are filled).

The functions upsample signal VALUES; a flow field's vectors must still be multiplied by
the factor by the caller.

Sample lattice (``align``)
    ``'centre'`` (default): low-res pixel i covers high-res pixels [i*s, (i+1)*s), its
    value sits at the block centre i*s + (s-1)/2. This is what area, bicubic and
    antialiased-bilinear downsampling produce (protocol B, flow), and what Pillow assumes.
    ``'corner'``: the value sits on high-res pixel i*s (protocol A point sampling, see
    :mod:`pacup.train.degrade`). Using the wrong lattice shifts the whole map by (s-1)/2 px.

Invalid low-res pixels
    They are first filled by push-pull (masked 2x2 averaging down a pyramid until every
    pixel has a value, then nearest upsampling back into the holes only:
    :func:`fill_invalid`), so bicubic never mixes in garbage. JBU and the guided filter
    also take the validity as a weight: high-res pixels whose low-res cell is invalid have
    weight 0 (they are filled from valid neighbours by the filter itself, and fall back to
    the filled bicubic value where no valid pixel is within the window).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..ops import pac_pool2d

__all__ = [
    "ALIGNS", "BASELINES", "bicubic_upsample", "fill_invalid", "guided_filter", "guided_upsample",
    "jbu_upsample", "nearest_upsample",
]

ALIGNS = ("centre", "corner")

# Defaults chosen on the synthetic split, never on the dev sets: depth x8, protocol B, 8 frames
# of 192 px (``python -m pacup.train.evaluate --sweep-baselines --factor 8 --n 8 --size 192``;
# RMSE in cm, bicubic 33.53). JBU: sigma_range in {0.03, 0.05, 0.08, 0.12, 0.2} x
# sigma_spatial in {0.5, 1} x factor x init {bicubic, nearest}: best 0.03 / 1.0 / bicubic
# (28.59, -14.7 %; nearest init is always ~1 cm worse). Guided filter: radius in {0.5, 1, 2}
# x factor x eps in {1e-4, 1e-3, 1e-2} x {grey, RGB}: best radius 0.5 x factor, eps 1e-4,
# RGB (30.30, -9.6 %); both optima lie on the small edge of the grid.
JBU_SIGMA_RANGE = 0.03     # RGB units in [0, 1]
JBU_SIGMA_SPATIAL = 1.0    # times the factor, in high-res pixels
GUIDED_RADIUS = 0.5        # times the factor, in high-res pixels
GUIDED_EPS = 1e-4          # (RGB units in [0, 1])**2
GUIDED_COLOR = True        # 3x3 covariance on RGB rather than grey


# --------------------------------------------------------------------------- helpers


def _check(low, low_valid, factor):
    low = np.asarray(low, dtype=np.float32)
    if low.ndim not in (2, 3):
        raise ValueError(f"low must be (h, w) or (h, w, C), got shape {low.shape}")
    s = int(factor)
    if s != factor or s < 1:
        raise ValueError(f"factor must be a positive integer, got {factor!r}")
    if low_valid is None:
        low_valid = np.isfinite(low) if low.ndim == 2 else np.isfinite(low).all(axis=2)
    else:
        low_valid = np.asarray(low_valid, bool)
        if low_valid.shape != low.shape[:2]:
            raise ValueError(f"low_valid {low_valid.shape} does not match low {low.shape[:2]}")
        low_valid = low_valid & (np.isfinite(low) if low.ndim == 2 else np.isfinite(low).all(axis=2))
    return low, low_valid, s


def _check_align(align):
    if align not in ALIGNS:
        raise ValueError(f"align must be one of {ALIGNS}, got {align!r}")


def _guide_float(guide, shape):
    g = np.asarray(guide)
    if g.ndim == 2:
        g = np.repeat(g[..., None], 3, axis=2)
    if g.ndim != 3 or g.shape[2] != 3:
        raise ValueError(f"guide must be (H, W, 3), got shape {g.shape}")
    if g.shape[:2] != tuple(shape):
        raise ValueError(f"guide is {g.shape[:2]} but the output is {tuple(shape)} (low size x factor)")
    if g.dtype == np.uint8:
        return g.astype(np.float32) / 255.0
    return g.astype(np.float32)


def _to_chw(a: np.ndarray) -> torch.Tensor:
    a = a[..., None] if a.ndim == 2 else a
    return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)))[None]


def _from_chw(t: torch.Tensor, squeeze: bool) -> np.ndarray:
    a = t[0].permute(1, 2, 0).cpu().numpy().astype(np.float32)
    return a[..., 0] if squeeze else a


def fill_invalid(low: np.ndarray, low_valid: np.ndarray | None) -> np.ndarray:
    """Push-pull hole filling: every invalid pixel gets the masked mean of the smallest
    coarser pyramid cell (2x2 masked averaging per level) that holds a valid pixel.
    Valid pixels keep their values exactly. All-invalid input gives zeros.

    Args:
        low: (h, w) or (h, w, C). low_valid: bool (h, w) or None (= finite pixels).

    Returns:
        float32 array of the shape of ``low``.
    """
    low, v, _ = _check(low, low_valid, 1)
    if v.all():
        return low.copy()
    if not v.any():
        return np.zeros_like(low)
    x = _to_chw(np.where((v if low.ndim == 2 else v[..., None]), low, 0).astype(np.float64))
    m = torch.from_numpy(v.astype(np.float64))[None, None]
    return _from_chw(_push_pull(x, m), low.ndim == 2)


def _push_pull(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    if bool((m > 0).all()):
        return x
    h, w = x.shape[-2:]
    if h == 1 and w == 1:
        return x  # m == 0 here only when nothing is valid, excluded by the caller
    ph, pw = h % 2, w % 2
    xp = F.pad(x * m, (0, pw, 0, ph))
    mp = F.pad(m, (0, pw, 0, ph))
    num = F.avg_pool2d(xp, 2) * 4
    den = F.avg_pool2d(mp, 2) * 4
    coarse = torch.where(den > 0, num / den.clamp_min(1e-300), torch.zeros_like(num))
    coarse = _push_pull(coarse, (den > 0).to(m.dtype))
    up = coarse.repeat_interleave(2, dim=-2).repeat_interleave(2, dim=-1)[..., :h, :w]
    return torch.where(m > 0, x, up)


def _pil_resize(a: np.ndarray, size_hw, align: str, factor: int, resample) -> np.ndarray:
    """Pillow float resize of one channel; ``'corner'`` shifts the sampling box by
    (0.5 - 0.5/s) low-res px so that low-res pixel i lands on high-res pixel i*s (the
    image is edge-padded by one pixel first because Pillow's box must stay inside it)."""
    H, W = size_hw
    if align == "centre":
        return np.asarray(Image.fromarray(a).resize((W, H), resample), dtype=np.float32)
    h, w = a.shape
    p = np.pad(a, 1, mode="edge")
    o = 1.0 + 0.5 - 0.5 / factor
    box = (o, o, o + w, o + h)
    return np.asarray(Image.fromarray(p).resize((W, H), resample, box=box), dtype=np.float32)


# --------------------------------------------------------------------------- baselines


def nearest_upsample(low, factor, low_valid=None, align="centre") -> np.ndarray:
    """Each (filled) low-res value repeated over its factor x factor block. With
    ``align='corner'`` the block starts half a block earlier (pixel i*s gets sample i,
    nearest in the point-sampling sense)."""
    _check_align(align)
    low, v, s = _check(low, low_valid, factor)
    filled = fill_invalid(low, v)
    if align == "centre":
        return np.repeat(np.repeat(filled, s, axis=0), s, axis=1)
    h, w = low.shape[:2]
    idx_y = np.clip(np.floor((np.arange(h * s) + s / 2) / s).astype(int), 0, h - 1)
    idx_x = np.clip(np.floor((np.arange(w * s) + s / 2) / s).astype(int), 0, w - 1)
    return filled[idx_y][:, idx_x]


def bicubic_upsample(low, factor, low_valid=None, align="centre") -> np.ndarray:
    """Pillow bicubic upsampling (float32, mode ``'F'``, a = -0.5) of the hole-filled input.

    Args:
        low: (h, w) or (h, w, C). factor: integer s. low_valid: bool (h, w) or None.
        align: sample lattice, see the module docstring.

    Returns:
        float32 (h*s, w*s[, C]).

    Example:
        >>> bicubic_upsample(np.ones((4, 4), np.float32), 4).shape
        (16, 16)
    """
    _check_align(align)
    low, v, s = _check(low, low_valid, factor)
    filled = fill_invalid(low, v)
    h, w = low.shape[:2]
    if low.ndim == 2:
        return _pil_resize(filled, (h * s, w * s), align, s, Image.BICUBIC)
    return np.stack([_pil_resize(np.ascontiguousarray(filled[..., c]), (h * s, w * s), align, s, Image.BICUBIC)
                     for c in range(low.shape[2])], axis=2)


def _highres_mask(v: np.ndarray, s: int, align: str) -> np.ndarray:
    return nearest_upsample(v.astype(np.float32), s, None, align) > 0.5


def jbu_upsample(low, guide, factor, low_valid=None, *, sigma_spatial: float | None = None,
                 sigma_range: float = JBU_SIGMA_RANGE, radius: int | None = None, dilation: int | None = None,
                 init: str = "bicubic", align: str = "centre") -> np.ndarray:
    """Joint bilateral upsampling, computed with the PAC pooling op.

    The input is first upsampled (``init``: ``'bicubic'`` or ``'nearest'``), then filtered
    at full resolution by :func:`pacup.ops.pac_pool2d` with the adapting features
    ``f = (r, g, b) / sigma_range`` and ``(x, y) / sigma_spatial`` (pixel coordinates) and
    the nearest-upsampled validity as mask, so the PAC gaussian kernel
    ``K = exp(-0.5 ||f_p - f_q||^2)`` is exactly the bilateral weight
    ``exp(-|dxy|^2 / (2 sigma_spatial^2)) * exp(-|drgb|^2 / (2 sigma_range^2))`` and the
    normalisation ``Z = sum M*K`` is the bilateral normaliser:

        out_p = sum_q M_q K(p, q) x_q / sum_q M_q K(p, q),  q in the (2 radius + 1)^2 window

    Args:
        low, guide, factor, low_valid, align: see the module docstring.
        sigma_spatial: spatial sigma in HIGH-res pixels; default ``1.0 * factor``.
        sigma_range: colour sigma for RGB in [0, 1] (0.03 is about 8 grey levels).
        radius: window radius in high-res pixels (taps ``radius // dilation`` each side);
            default ``ceil(2 * sigma_spatial)``.
        dilation: tap spacing (a cheaper, sparser window for large factors); default
            ``max(1, factor // 4)``, the setting of the sweep.
        init: initial upsampling.

    Returns:
        float32 (h*s, w*s[, C]).
    """
    _check_align(align)
    low, v, s = _check(low, low_valid, factor)
    if sigma_spatial is None:
        sigma_spatial = JBU_SIGMA_SPATIAL * s
    if not (sigma_spatial > 0 and sigma_range > 0):
        raise ValueError("sigma_spatial and sigma_range must be positive")
    if init == "bicubic":
        up = bicubic_upsample(low, s, v, align)
    elif init == "nearest":
        up = nearest_upsample(low, s, v, align)
    else:
        raise ValueError(f"init must be 'bicubic' or 'nearest', got {init!r}")
    H, W = up.shape[:2]
    rgb = _guide_float(guide, (H, W))
    if radius is None:
        radius = int(math.ceil(2 * sigma_spatial))
    if dilation is None:
        dilation = max(1, s // 4)
    taps = max(1, int(radius) // int(dilation))
    yy, xx = np.meshgrid(np.arange(H, dtype=np.float32), np.arange(W, dtype=np.float32), indexing="ij")
    feats = np.concatenate([rgb / np.float32(sigma_range),
                            (np.stack([xx, yy], axis=2) / np.float32(sigma_spatial))], axis=2)
    mask = _highres_mask(v, s, align)
    with torch.no_grad():
        x = _to_chw(up.astype(np.float32))
        f = _to_chw(feats.astype(np.float32))
        m = torch.from_numpy(mask.astype(np.float32))[None, None]
        out, out_m = pac_pool2d(x, f, 2 * taps + 1, padding=taps * dilation, dilation=dilation, mask=m)
        # Z underflows to 0 only where no valid tap is near (or every K is ~0): keep bicubic there.
        out = torch.where(out_m > 0, out, x)
    return _from_chw(out, low.ndim == 2)


def _box(x: torch.Tensor, r: int) -> torch.Tensor:
    """Sum over the (2r+1)^2 window clipped to the image, O(1) per pixel (cumulative sums)."""
    H, W = x.shape[-2:]
    c = F.pad(x, (1, 0, 1, 0)).cumsum(-2).cumsum(-1)  # c[i, j] = sum x[:i, :j]
    i0 = (torch.arange(H) - r).clamp(0, H)
    i1 = (torch.arange(H) + r + 1).clamp(0, H)
    j0 = (torch.arange(W) - r).clamp(0, W)
    j1 = (torch.arange(W) + r + 1).clamp(0, W)
    a = c[..., i1, :][..., :, j1] - c[..., i0, :][..., :, j1] - c[..., i1, :][..., :, j0] + c[..., i0, :][..., :, j0]
    return a


def guided_filter(p, guide, radius: int, eps: float, weight=None, color: bool = False) -> np.ndarray:
    """Guided filter of He et al. (ECCV 2010 / TPAMI 2013), box-filter form, optionally with
    per-pixel weights (weighted least squares in every window; weight 0 = ignored pixel).

    In every (2 radius + 1)^2 window w_k (clipped to the image) the output is a linear
    function of the guide, ``q = a_k . I + b_k``, fitted to ``p`` by weighted least squares
    with ridge ``eps`` on ``a_k``; each pixel averages the (a_k, b_k) of the windows that
    contain it (plain, unweighted mean, as in the paper).

    Args:
        p: (H, W) or (H, W, C) input to filter.
        guide: (H, W, 3) RGB (uint8 or [0, 1] float) or (H, W) grey.
        radius: window radius in pixels.
        eps: regularisation, in squared guide units (guide in [0, 1]).
        weight: optional (H, W) float/bool weights of ``p``'s pixels.
        color: use the 3-channel RGB guide (3x3 covariance per window) instead of grey
            (ITU-R 601 luma).

    Returns:
        float32 array of the shape of ``p``. Where a window holds no weight, ``a = 0`` and
        ``b`` is taken from the unweighted mean of ``p``.
    """
    p = np.asarray(p, dtype=np.float32)
    squeeze = p.ndim == 2
    H, W = p.shape[:2]
    g = np.asarray(guide)
    g = g.astype(np.float64) / 255.0 if g.dtype == np.uint8 else g.astype(np.float64)
    if g.ndim == 2:
        g = g[..., None]
    if g.shape[:2] != (H, W):
        raise ValueError(f"guide {g.shape[:2]} does not match p {(H, W)}")
    if not color and g.shape[2] == 3:
        g = (0.299 * g[..., 0] + 0.587 * g[..., 1] + 0.114 * g[..., 2])[..., None]
    elif g.shape[2] not in (1, 3):
        raise ValueError(f"guide must have 1 or 3 channels, got {g.shape}")
    r = int(radius)
    if r < 0 or not eps >= 0:
        raise ValueError("radius must be >= 0 and eps >= 0")
    I = torch.from_numpy(np.ascontiguousarray(g.transpose(2, 0, 1)))  # (n, H, W) float64
    P = torch.from_numpy(np.ascontiguousarray((p[..., None] if squeeze else p).transpose(2, 0, 1)).astype(np.float64))
    w = torch.ones(1, H, W, dtype=torch.float64) if weight is None else \
        torch.from_numpy(np.asarray(weight, np.float64))[None]
    n = I.shape[0]
    sw = _box(w, r)
    has = sw > 1e-12
    swc = torch.where(has, sw, torch.ones_like(sw))
    mI = _box(w * I, r) / swc                           # (n, H, W)
    mP = _box(w * P, r) / swc                           # (C, H, W)
    # Covariances: cov(I_a, I_b) and cov(I_a, P_c).
    cII = torch.empty(n, n, H, W, dtype=torch.float64)
    for a in range(n):
        for b in range(a, n):
            cII[a, b] = cII[b, a] = _box(w * I[a] * I[b], r) / swc[0] - mI[a] * mI[b]
    cIP = torch.stack([_box(w * I[a] * P, r) / swc - mI[a] * mP for a in range(n)])  # (n, C, H, W)
    if n == 1:
        A = cIP[0] / (cII[0, 0] + eps)                 # (C, H, W)
        A = A[None]
    else:
        S = cII.permute(2, 3, 0, 1) + eps * torch.eye(n, dtype=torch.float64)   # (H, W, n, n)
        A = torch.linalg.solve(S, cIP.permute(2, 3, 0, 1)).permute(2, 3, 0, 1)  # (n, C, H, W)
    A = torch.where(has, A, torch.zeros_like(A))
    mP_plain = _box(P, r) / _box(torch.ones(1, H, W, dtype=torch.float64), r)
    B = torch.where(has, mP - (A * mI[:, None]).sum(0), mP_plain)             # (C, H, W)
    cnt = _box(torch.ones(1, H, W, dtype=torch.float64), r)
    mA = _box(A.reshape(n * A.shape[1], H, W), r).reshape(A.shape) / cnt
    mB = _box(B, r) / cnt
    q = (mA * I[:, None]).sum(0) + mB
    out = q.permute(1, 2, 0).numpy().astype(np.float32)
    return out[..., 0] if squeeze else out


def guided_upsample(low, guide, factor, low_valid=None, *, radius: int | None = None, eps: float = GUIDED_EPS,
                    color: bool = GUIDED_COLOR, align: str = "centre") -> np.ndarray:
    """Guided-filter upsampling: bicubic upsampling, then :func:`guided_filter` guided by the
    full-resolution image, with the nearest-upsampled low-res validity as weights.

    Args:
        low, guide, factor, low_valid, align: see the module docstring.
        radius: window radius in high-res pixels; default ``GUIDED_RADIUS * factor`` (0.5 x s).
        eps: ridge in (guide units in [0, 1])^2; 1e-4 keeps edges of about 0.01 contrast.
        color: RGB guide (3x3 covariance, default) instead of grey (ITU-R 601 luma).

    Returns:
        float32 (h*s, w*s[, C]).
    """
    _check_align(align)
    low, v, s = _check(low, low_valid, factor)
    up = bicubic_upsample(low, s, v, align)
    rgb = _guide_float(guide, up.shape[:2])
    if radius is None:
        radius = max(1, int(round(GUIDED_RADIUS * s)))
    return guided_filter(up, rgb, radius, eps, weight=_highres_mask(v, s, align).astype(np.float32), color=color)


BASELINES = {
    "nearest": lambda low, guide, factor, low_valid=None, align="centre": nearest_upsample(low, factor, low_valid, align),
    "bicubic": lambda low, guide, factor, low_valid=None, align="centre": bicubic_upsample(low, factor, low_valid, align),
    "jbu": lambda low, guide, factor, low_valid=None, align="centre": jbu_upsample(low, guide, factor, low_valid,
                                                                                   align=align),
    "guided": lambda low, guide, factor, low_valid=None, align="centre": guided_upsample(low, guide, factor, low_valid,
                                                                                         align=align),
}
