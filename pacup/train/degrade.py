"""Make the low-resolution input of guided upsampling from a ground-truth map.

Geometry
    The ground truth is first cropped to a multiple of the factor ``s``, keeping the
    top-left corner: ``gt[: (H // s) * s, : (W // s) * s]`` (:func:`crop_to_multiple`).
    The low-res output is ``(H // s, W // s)``. :func:`degrade` crops internally but
    returns only the low-res map; callers crop their full-res target with
    :func:`crop_to_multiple` so that target and input describe the same area.

Methods (:data:`METHODS`)
    ``"bicubic"``
        Protocol B (DKN, FDSR, DCTNet, SUFT, SGNet): Pillow bicubic resize of the float32
        map (mode ``"F"``); Pillow widens the kernel by the factor when reducing, so this
        is the antialiased bicubic every protocol-B code base gets from
        ``Image.resize(..., Image.BICUBIC)``.
    ``"point"``
        Protocol A (PAC paper): one sample per s x s block, the TOP-LEFT pixel:
        ``low[i, j] = gt[i * s, j * s]``. This is the sample lattice of a stride-s
        transposed convolution with padding (k - 1) / 2: output pixel ``i * s`` is where
        input sample ``i`` lands, so low-res sample i sits exactly on high-res pixel i*s.
    ``"area"``
        Block mean over each s x s block.
    ``"bilinear_aa"``
        Antialiased bilinear (triangle filter widened by s): Pillow BILINEAR resize of
        the float map; the flow protocol of the anchors (MPI Sintel).

Invalid pixels
    ``valid`` (bool, H x W) marks usable ground truth. If omitted it is derived: finite
    everywhere, and additionally ``!= 0`` for a non-flow map (depth convention: 0 =
    invalid) or ``|value| <= 1e9`` for flow (Middlebury "unknown"). Invalid values never
    enter a valid low-res pixel:

    * point: the sample keeps its validity;
    * area / bicubic / bilinear_aa: normalised (masked) filtering,
      ``low = resize(gt * valid) / resize(valid)``; a low-res pixel is valid only where at
      least 50% of its s x s block is valid (and, for the resize filters, the filter's
      own valid weight is >= 0.25). Where everything is valid the plain filter is used,
      so results are bit-identical to the protocol definitions.

    Invalid low-res pixels are set to 0.

Flow
    With ``flow=True`` the map is H x W x 2 (u, v) in full-res pixels; vectors are
    divided by s, so ``low`` is in low-res pixel units (the inverse of multiplying by s
    when upsampling).

Robustness options (applied after downsampling, at low resolution)
    ``noise_std``: depth -- multiplicative Gaussian noise, ``low * (1 + noise_std * N)``
    (e.g. 0.01 = 1% of depth); flow -- additive Gaussian noise of ``noise_std`` low-res
    pixels. ``holes``: fraction (0-1) of low-res pixels turned invalid (value 0) in
    random blob-shaped regions, like sensor drop-outs. Both use ``seed``.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

METHODS = ("bicubic", "point", "area", "bilinear_aa")
_PIL = {"bicubic": Image.BICUBIC, "bilinear_aa": Image.BILINEAR}


def crop_to_multiple(x: np.ndarray, factor: int) -> np.ndarray:
    """Top-left crop of the first two axes to multiples of ``factor``."""
    s = int(factor)
    H, W = x.shape[:2]
    return x[: (H // s) * s, : (W // s) * s]


def _resize(a: np.ndarray, h: int, w: int, method: str) -> np.ndarray:
    im = Image.fromarray(np.ascontiguousarray(a, dtype=np.float32))
    return np.asarray(im.resize((w, h), _PIL[method]), dtype=np.float32)


def _block_mean(a: np.ndarray, s: int) -> np.ndarray:
    h, w = a.shape[0] // s, a.shape[1] // s
    return a.reshape(h, s, w, s).mean(axis=(1, 3), dtype=np.float64).astype(np.float32)


def _hole_mask(rng: np.random.Generator, h: int, w: int, frac: float) -> np.ndarray:
    """Blob-shaped boolean mask covering about ``frac`` of an h x w grid."""
    if frac <= 0:
        return np.zeros((h, w), bool)
    if frac >= 1:
        return np.ones((h, w), bool)
    cell = rng.uniform(4.0, 16.0)  # blob scale, low-res pixels
    gh, gw = max(2, int(round(h / cell)) + 1), max(2, int(round(w / cell)) + 1)
    field = rng.random((gh, gw), dtype=np.float32)
    field = _resize(field, h, w, "bicubic") if (gh, gw) != (h, w) else field
    field = field + rng.random((h, w), dtype=np.float32) * 1e-3  # break ties
    thr = np.quantile(field, 1.0 - frac)
    return field > thr


def degrade(gt: np.ndarray, factor: int, method: str, valid: np.ndarray | None = None,
            noise_std: float = 0.0, holes: float = 0.0, seed: int | None = None,
            flow: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Low-res input from ground truth; see the module docstring for every definition.

    Parameters
    ----------
    gt : (H, W) or (H, W, C) array (depth: metres, 0/NaN invalid; flow: (H, W, 2)).
    factor : integer downsampling factor s >= 1.
    method : one of :data:`METHODS`.
    valid : optional bool (H, W) mask of usable ground truth.
    noise_std, holes, seed : robustness options (see module docstring).
    flow : divide vectors by s and use additive noise.

    Returns
    -------
    low : float32, (H // s, W // s) or (H // s, W // s, C); 0 where invalid.
    low_valid : bool, (H // s, W // s).
    """
    if method not in METHODS:
        raise ValueError(f"unknown degradation method {method!r}; valid methods: {', '.join(METHODS)}")
    s = int(factor)
    if s < 1 or s != factor:
        raise ValueError(f"factor must be a positive integer, got {factor!r}")
    gt = np.asarray(gt)
    if gt.ndim not in (2, 3):
        raise ValueError(f"gt must be HxW or HxWxC, got shape {gt.shape}")
    if gt.shape[0] < s or gt.shape[1] < s:
        raise ValueError(f"gt {gt.shape[:2]} is smaller than the factor {s}")
    if flow and (gt.ndim != 3 or gt.shape[2] != 2):
        raise ValueError(f"flow must be HxWx2, got shape {gt.shape}")
    x = crop_to_multiple(gt, s).astype(np.float32)
    squeeze = x.ndim == 2
    if squeeze:
        x = x[..., None]
    H, W, C = x.shape
    h, w = H // s, W // s

    finite = np.isfinite(x).all(axis=2)
    if valid is None:
        v = finite.copy()
        if flow:
            with np.errstate(invalid="ignore"):
                v &= (np.abs(x) <= 1e9).all(axis=2)
        elif C == 1:
            v &= x[..., 0] != 0
    else:
        v = crop_to_multiple(np.asarray(valid, bool), s) & finite
    x = np.where(v[..., None], x, np.float32(0))
    all_valid = bool(v.all())

    if method == "point":
        low = x[::s, ::s].copy()
        lv = v[::s, ::s].copy()
    elif all_valid:
        if method == "area":
            low = np.stack([_block_mean(x[..., c], s) for c in range(C)], axis=2)
        else:
            low = np.stack([_resize(x[..., c], h, w, method) for c in range(C)], axis=2)
        lv = np.ones((h, w), bool)
    else:
        vf = v.astype(np.float32)
        frac = _block_mean(vf, s)
        if method == "area":
            den = frac
            num = np.stack([_block_mean(x[..., c], s) for c in range(C)], axis=2)
            lv = frac >= 0.5
        else:
            den = _resize(vf, h, w, method)
            num = np.stack([_resize(x[..., c], h, w, method) for c in range(C)], axis=2)
            lv = (frac >= 0.5) & (den >= 0.25)
        with np.errstate(divide="ignore", invalid="ignore"):
            low = num / den[..., None]
    if flow:
        low = low / np.float32(s)

    if noise_std > 0 or holes > 0:
        rng = np.random.default_rng(seed)
        if noise_std > 0:
            n = rng.standard_normal(low.shape).astype(np.float32) * np.float32(noise_std)
            low = low + n if flow else low * (1 + n)
        if holes > 0:
            lv = lv & ~_hole_mask(rng, h, w, float(holes))

    low = np.where(lv[..., None], low, np.float32(0)).astype(np.float32)
    if squeeze:
        low = low[..., 0]
    return low, lv
