"""Visualisation of depth and flow as 8-bit RGB images (no matplotlib needed).

Colour maps are 256-entry tables generated at import time from published polynomial fits:

- ``turbo``: Google's Turbo colormap, polynomial approximation by Ruofei Du
  (Copyright 2019 Google LLC, Apache-2.0; https://gist.github.com/mikhailov-work/0d177465a8151eb6ede1768d51d476c7).
- ``inferno``: matplotlib's inferno, degree-6 fit by Matt Zucconi (CC0;
  https://www.shadertoy.com/view/WlfXRN).

Functions here take arrays and raise ``ValueError`` for arrays of the wrong shape; only
:func:`write_image` touches files.
"""

from __future__ import annotations

import numpy as np

from .image import write_image

__all__ = ["COLORMAPS", "colorize_depth", "colorize_flow", "side_by_side", "write_image"]

# Turbo: value = dot([1, x, x^2, x^3, x^4, x^5], coefficients) per channel.
_TURBO = np.array(
    [
        [0.13572138, 4.61539260, -42.66032258, 132.13108234, -152.94239396, 59.28637943],
        [0.09140261, 2.19418839, 4.84296658, -14.18503333, 4.27729857, 2.82956604],
        [0.10667330, 12.64194608, -60.58204836, 110.36276771, -89.90310912, 27.34824973],
    ]
)
# Inferno: value = sum_k c_k x^k, k = 0..6, per channel.
_INFERNO = np.array(
    [
        [0.0002189403691192265, 0.1065134194856116, 11.60249308247187, -41.70399613139459,
         77.162935699427, -71.31942824499214, 25.13112622477341],
        [0.001651004631001012, 0.5639564367884091, -3.972853965665698, 17.43639888205313,
         -33.40235894210092, 32.62606426397723, -12.24266895238567],
        [-0.01948089843709184, 3.932712388889277, -15.9423941062914, 44.35414519872813,
         -81.80730925738993, 73.20951985803202, -23.07032500287172],
    ]
)  # fmt: skip


def _table(coefficients: np.ndarray) -> np.ndarray:
    """Evaluate per-channel polynomials at 256 points in [0, 1] -> uint8 (256, 3) table."""
    x = np.linspace(0.0, 1.0, 256)
    powers = x[:, None] ** np.arange(coefficients.shape[1])[None, :]  # (256, degree + 1)
    return np.rint(np.clip(powers @ coefficients.T, 0.0, 1.0) * 255).astype(np.uint8)


COLORMAPS: dict[str, np.ndarray] = {"turbo": _table(_TURBO), "inferno": _table(_INFERNO)}


def colorize_depth(
    depth, valid=None, vmin: float | None = None, vmax: float | None = None, cmap: str = "turbo"
) -> np.ndarray:
    """Map a depth map to colours; small values get the start of the colormap.

    Args:
        depth: (H, W) real array.
        valid: Optional bool (H, W) mask; default: finite and > 0 (the :mod:`pacup.io`
            depth convention). Non-finite values are never treated as valid.
        vmin, vmax: Values mapped to the first/last colour; values outside are clamped.
            Each defaults to the 2nd/98th percentile of the valid values, so one outlier
            does not wash out the image. Pass fixed values to make frames comparable.
        cmap: ``"turbo"`` or ``"inferno"``.

    Returns:
        uint8 (H, W, 3); invalid pixels are black. Note that inferno's first colour is
        also nearly black, so prefer turbo when invalid pixels must stand out.

    Raises:
        ValueError: Unknown colormap or wrong array shapes.
    """
    if cmap not in COLORMAPS:
        raise ValueError(f"unknown colormap {cmap!r}; choose one of {', '.join(COLORMAPS)}")
    d = np.asarray(depth, dtype=np.float64)
    if d.ndim != 2:
        raise ValueError(f"depth must be HxW, got shape {d.shape}")
    finite = np.isfinite(d)
    if valid is None:
        with np.errstate(invalid="ignore"):
            mask = finite & (d > 0)
    else:
        mask = np.asarray(valid, dtype=bool)
        if mask.shape != d.shape:
            raise ValueError(f"valid has shape {mask.shape}, depth has {d.shape}")
        mask = mask & finite
    rgb = np.zeros(d.shape + (3,), np.uint8)
    if not mask.any():
        return rgb
    values = d[mask]
    lo = float(np.percentile(values, 2)) if vmin is None else float(vmin)
    hi = float(np.percentile(values, 98)) if vmax is None else float(vmax)
    span = hi - lo
    # A constant map (span 0) maps everything at or below vmin to the first colour.
    t = (values - lo) / span if span > 0 else (values > lo).astype(np.float64)
    rgb[mask] = COLORMAPS[cmap][np.rint(np.clip(t, 0.0, 1.0) * 255).astype(np.intp)]
    return rgb


def _color_wheel() -> np.ndarray:
    """Middlebury flow colour wheel (Baker et al., IJCV 2011): (55, 3) floats in [0, 255].

    Hue segments red->yellow->green->cyan->blue->magenta->red with 15, 6, 4, 11, 13, 6
    steps, chosen for roughly perceptually even spacing.
    """
    segments = [  # (steps, channel that ramps, ramps up?, channel held at 255)
        (15, 1, True, 0),  # RY: red full, green rises
        (6, 0, False, 1),  # YG: green full, red falls
        (4, 2, True, 1),  # GC: green full, blue rises
        (11, 1, False, 2),  # CB: blue full, green falls
        (13, 0, True, 2),  # BM: blue full, red rises
        (6, 2, False, 0),  # MR: red full, blue falls
    ]
    rows = []
    for steps, ramp, rising, full in segments:
        block = np.zeros((steps, 3))
        ramp_values = np.floor(255 * np.arange(steps) / steps)
        block[:, ramp] = ramp_values if rising else 255 - ramp_values
        block[:, full] = 255
        rows.append(block)
    return np.concatenate(rows)


_WHEEL = _color_wheel()


def colorize_flow(flow, valid=None, max_norm: float | None = None) -> np.ndarray:
    """Colour-code optical flow with the Middlebury colour wheel.

    Hue encodes direction (with image y pointing down: +x is red, +y yellow, -x
    light blue, -y violet) and saturation encodes magnitude relative to ``max_norm``:
    zero flow is white, flow of magnitude ``max_norm`` is fully saturated, and longer
    vectors are drawn darkened (x0.75) to flag that they are out of range.

    Args:
        flow: (H, W, 2) array (u, v) in pixels.
        valid: Optional bool (H, W) mask; default: both components finite.
        max_norm: Magnitude mapped to full saturation. Default: the largest valid magnitude
            in *this* field, which makes every image use its full range but makes colours
            incomparable between frames; pass the same ``max_norm`` for a sequence to make
            frames comparable.

    Returns:
        uint8 (H, W, 3); invalid pixels are black.

    Raises:
        ValueError: Wrong array shapes or a non-positive ``max_norm``.
    """
    f = np.asarray(flow, dtype=np.float64)
    if f.ndim != 3 or f.shape[2] != 2:
        raise ValueError(f"flow must be HxWx2, got shape {f.shape}")
    mask = np.all(np.isfinite(f), axis=2)
    if valid is not None:
        v = np.asarray(valid, dtype=bool)
        if v.shape != f.shape[:2]:
            raise ValueError(f"valid has shape {v.shape}, flow has {f.shape[:2]}")
        mask &= v
    rgb = np.zeros(f.shape[:2] + (3,), np.uint8)
    if not mask.any():
        return rgb
    u, v = f[..., 0][mask], f[..., 1][mask]
    rad = np.hypot(u, v)
    if max_norm is None:
        norm = float(rad.max()) or 1.0  # an all-zero field is drawn white, not NaN
    else:
        norm = float(max_norm)
        if not (np.isfinite(norm) and norm > 0):
            raise ValueError(f"max_norm must be a positive number, got {max_norm!r}")
    u, v, rad = u / norm, v / norm, rad / norm

    ncols = len(_WHEEL)
    angle = np.arctan2(-v, -u) / np.pi  # in [-1, 1]; -1 (and +1) = pointing along +x
    fk = (angle + 1) / 2 * (ncols - 1)
    k0 = np.floor(fk).astype(np.intp)
    k1 = (k0 + 1) % ncols
    frac = (fk - k0)[:, None]
    col = ((1 - frac) * _WHEEL[k0] + frac * _WHEEL[k1]) / 255.0
    inside = rad <= 1
    col[inside] = 1 - rad[inside, None] * (1 - col[inside])  # blend towards white near zero
    col[~inside] *= 0.75
    rgb[mask] = np.floor(255 * col).astype(np.uint8)
    return rgb


def side_by_side(images: list, pad: int = 4, pad_value: int = 255) -> np.ndarray:
    """Concatenate images horizontally after resizing them to a common height.

    Every image is scaled (nearest neighbour, aspect ratio kept) to the tallest image's
    height, so a low-resolution input can be compared directly with its upsampled result.

    Args:
        images: Non-empty list of uint8 (H, W, 3) (or (H, W) greyscale) arrays.
        pad: Width in pixels of the gap between images.
        pad_value: Grey level of the gap (white by default, so black invalid pixels at an
            image border stay visible).

    Returns:
        uint8 (H, W_total, 3).

    Raises:
        ValueError: Empty list, non-uint8 or wrongly shaped images, or negative ``pad``.
    """
    if not images:
        raise ValueError("side_by_side needs at least one image")
    if pad < 0:
        raise ValueError(f"pad must be >= 0, got {pad}")
    arrays = []
    for i, img in enumerate(images):
        a = np.asarray(img)
        if a.ndim == 2:
            a = np.repeat(a[:, :, None], 3, axis=2)
        if a.dtype != np.uint8 or a.ndim != 3 or a.shape[2] != 3 or 0 in a.shape:
            raise ValueError(f"image {i} must be uint8 HxWx3 or HxW, got {a.dtype} {a.shape}")
        arrays.append(a)
    height = max(a.shape[0] for a in arrays)
    parts = []
    for i, a in enumerate(arrays):
        h, w = a.shape[:2]
        width = max(1, round(w * height / h))
        # Sample at pixel centres so that integer scale factors replicate pixels exactly.
        rows = ((np.arange(height) + 0.5) * h / height).astype(np.intp)
        cols = ((np.arange(width) + 0.5) * w / width).astype(np.intp)
        if i:
            parts.append(np.full((height, pad, 3), pad_value, np.uint8))
        parts.append(a[rows][:, cols])
    return np.concatenate(parts, axis=1)
