"""Textures for the synthetic training scenes.

Two sources:

* Real photographs: the sample images that ship inside the scikit-image wheel
  (``skimage/data/*.png|jpg``). They are read directly from the installed package
  directory with Pillow -- scikit-image is never imported and nothing is ever
  downloaded (some ``skimage.data`` functions fetch files over the network; the files
  used here are the ones bundled in the wheel). If scikit-image is not installed the
  photo pool is simply empty and only procedural textures are used, so training still
  runs (but scenes for a given seed then differ from an install with photos).
* Procedural patterns: multi-octave value noise, wood / marble (sine of a
  noise-perturbed coordinate), stripes and checkerboards, kept as a bank of scalar
  patterns built once per process from fixed seeds and coloured through random 2-3
  colour ramps (sometimes two nearly equal colours: low-contrast hard cases).

A texture (:class:`TexImage`) is a planar float32 image plus a colour transform that is
applied after sampling, so creating one costs nothing and scenes only pay per pixel.
:func:`sample` looks textures up at arbitrary continuous texel coordinates with bilinear
interpolation and mirrored repetition (no seams), so surfaces of any size can be textured.

Loaded photographs are cached per process (longest side <= 512; about 30 MB as float32).
"""

from __future__ import annotations

import importlib.util
import os

import numpy as np
from PIL import Image

# Photographs bundled in the scikit-image wheel (checked for 0.26): readable offline.
# Colour photos and grey photos (the latter are tinted with random colours). Not
# motorcycle_left.png: it is the guide of the Middlebury dev image the models are scored on.
PHOTO_FILES = (
    "astronaut.png",
    "coffee.png",
    "chelsea.png",
    "rocket.jpg",
    "ihc.png",
    "camera.png",
    "brick.png",
    "grass.png",
    "gravel.png",
    "coins.png",
    "moon.png",
    "page.png",
    "text.png",
    "cell.png",
)

_PHOTO_CACHE: list[tuple[np.ndarray, bool]] | None = None


def _skimage_data_dir() -> str | None:
    try:
        spec = importlib.util.find_spec("skimage")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for loc in spec.submodule_search_locations:
        d = os.path.join(loc, "data")
        if os.path.isdir(d):
            return d
    return None


def photos() -> list[tuple[np.ndarray, bool]]:
    """The available photographs: ``(uint8 (h, w, 3), is_grey)`` pairs (cached; may be empty)."""
    global _PHOTO_CACHE
    if _PHOTO_CACHE is not None:
        return _PHOTO_CACHE
    out: list[np.ndarray] = []
    d = _skimage_data_dir()
    if d is not None:
        for name in PHOTO_FILES:
            path = os.path.join(d, name)
            if not os.path.isfile(path):
                continue
            try:
                with Image.open(path) as im:
                    im = im.convert("RGB")
                    if max(im.size) > 512:
                        s = 512 / max(im.size)
                        im = im.resize(
                            (max(1, round(im.size[0] * s)), max(1, round(im.size[1] * s))),
                            Image.BILINEAR,
                        )
                    a = np.asarray(im, dtype=np.uint8).copy()
                    grey = bool((a[..., 0] == a[..., 1]).all() and (a[..., 1] == a[..., 2]).all())
                    out.append((a, grey))
            except OSError:
                continue
    _PHOTO_CACHE = out
    return out


def clear_cache() -> None:
    """Forget the loaded photographs (tests use this to exercise the fallback)."""
    global _PHOTO_CACHE, _PHOTO_PLANES
    _PHOTO_CACHE = None
    _PHOTO_PLANES = None


# ----------------------------------------------------------------------------- sampling


def to_planar(tex: np.ndarray) -> np.ndarray:
    """(h, w, C) texture -> contiguous float32 (C, h, w) planes, the layout :func:`sample` wants."""
    return np.ascontiguousarray(np.moveaxis(np.asarray(tex, np.float32), -1, 0))


def _reflect(x: np.ndarray, n: int) -> np.ndarray:
    """Mirrored repetition of a continuous texel coordinate into [-0.5, n - 0.5]."""
    period = np.float32(2 * n)
    xm = x + np.float32(0.5)
    xm -= np.floor(xm * np.float32(1.0 / (2 * n))) * period  # cheaper than np.mod
    xm -= np.float32(0.5)
    return np.where(xm > np.float32(n - 0.5), period - np.float32(1) - xm, xm)


def sample(planes: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Bilinear lookup of a planar texture ``(C, h, w)`` at texel coordinates.

    ``x`` is the column, ``y`` the row; texel centres are at integer coordinates and the
    texture repeats mirrored outside (no seams). Returns float32 ``(C, n)`` for 1-D
    ``x``, ``y`` of length n. (Planar layout and ``take`` keep this ~4x faster than
    gathering (n, 3) rows.)
    """
    C, h, w = planes.shape
    x = _reflect(np.asarray(x, np.float32), w)
    y = _reflect(np.asarray(y, np.float32), h)
    x0f = np.floor(x)
    y0f = np.floor(y)
    fx = x - x0f
    fy = y - y0f
    x0 = x0f.astype(np.intp)
    y0 = y0f.astype(np.intp)
    x1 = np.minimum(x0 + 1, w - 1)
    y1 = np.minimum(y0 + 1, h - 1)
    np.maximum(x0, 0, out=x0)
    np.maximum(y0, 0, out=y0)
    y0 *= w
    y1 *= w
    i00 = y0 + x0
    i01 = y0 + x1
    i10 = y1 + x0
    i11 = y1 + x1
    flat = planes.reshape(C, h * w)
    out = np.empty((C, len(x)), np.float32)
    for c in range(C):
        p = flat[c]
        a = p.take(i00)
        a += (p.take(i01) - a) * fx
        b = p.take(i10)
        b += (p.take(i11) - b) * fx
        a += (b - a) * fy
        out[c] = a
    return out


# --------------------------------------------------------------------------- procedural


def hsv_to_rgb(h: float, s: float, v: float) -> np.ndarray:
    i = int(h * 6.0) % 6
    f = h * 6.0 - int(h * 6.0)
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    r, g, b = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i]
    return np.array([r, g, b], dtype=np.float32)


def random_colour(rng: np.random.Generator, sat=(0.0, 0.8), val=(0.15, 0.95)) -> np.ndarray:
    return hsv_to_rgb(rng.uniform(0, 1), rng.uniform(*sat), rng.uniform(*val))


def _resize_f(a: np.ndarray, size: int) -> np.ndarray:
    """Bicubic resize of a float32 2-D array to (size, size) with Pillow mode F."""
    im = Image.fromarray(np.ascontiguousarray(a, dtype=np.float32))
    return np.asarray(im.resize((size, size), Image.BICUBIC), dtype=np.float32)


def value_noise(rng: np.random.Generator, size: int = 128, base: int = 4,
                octaves: int = 4, persistence: float = 0.5) -> np.ndarray:
    """Multi-octave value noise in [0, 1], ``(size, size)`` float32.

    Octave o is a random lattice of ``base * 2**o`` cells, interpolated bicubically.
    """
    acc = np.zeros((size, size), np.float32)
    amp, tot = 1.0, 0.0
    cells = base
    for _ in range(octaves):
        cells_c = min(cells, size)
        acc += amp * _resize_f(rng.random((cells_c + 1, cells_c + 1), dtype=np.float32), size)
        tot += amp
        amp *= persistence
        cells *= 2
    acc /= tot
    lo, hi = float(acc.min()), float(acc.max())
    return (acc - lo) / max(hi - lo, 1e-6)


def _ramp_lut(colours) -> np.ndarray:
    """A (3, 256) lookup table: piecewise-linear ramp through ``colours``."""
    c = np.stack(colours).astype(np.float32)
    pos = np.linspace(0, 1, len(c))
    q = np.linspace(0, 1, 256)
    return np.stack([np.interp(q, pos, c[:, k]) for k in range(3)]).astype(np.float32)


class TexImage:
    """A texture ready for sampling: planar float32 ``planes`` (C, h, w) plus a colour map.

    * C == 3: colour = ``planes[perm] * gain`` (clipped to 1);
    * C == 1: a scalar pattern in [0, 1] mapped through ``lut`` (3, 256), a colour ramp.

    Colour transforms are applied to the sampled values, so a texture costs nothing to
    create: photographs and the procedural pattern bank are shared, per process.
    """

    __slots__ = ("planes", "lut", "perm", "gain")

    def __init__(self, planes, lut=None, perm=None, gain=None):
        planes = np.asarray(planes, np.float32)
        if planes.ndim != 3 or planes.shape[0] not in (1, 3):
            raise ValueError(f"planes must be (1|3, h, w), got {planes.shape}")
        if planes.shape[0] == 1 and lut is None:
            lut = np.repeat(np.linspace(0, 1, 256, dtype=np.float32)[None], 3, 0)
        self.planes, self.lut, self.perm, self.gain = planes, lut, perm, gain

    @classmethod
    def from_hwc(cls, img: np.ndarray) -> "TexImage":
        return cls(to_planar(img))

    def sample(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Colours (3, n) at texel coordinates (see :func:`sample`)."""
        v = sample(self.planes, x, y)
        if self.planes.shape[0] == 1:
            q = (v[0] * np.float32(255) + np.float32(0.5)).astype(np.intp)
            np.clip(q, 0, 255, out=q)
            out = np.empty((3, len(q)), np.float32)
            for c in range(3):
                out[c] = self.lut[c].take(q)
            return out
        if self.perm is not None:
            v = v[self.perm]
        if self.gain is not None:
            v *= np.asarray(self.gain, np.float32)[:, None]
            np.minimum(v, 1, out=v)
        return v


# ------------------------------------------------------------------ scalar pattern bank


def _coords(rng: np.random.Generator, size: int):
    ang = rng.uniform(0, np.pi)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    u = np.cos(ang) * xx + np.sin(ang) * yy
    v = -np.sin(ang) * xx + np.cos(ang) * yy
    return u, v


def _norm01(t):
    t = np.asarray(t, np.float32)
    lo, hi = float(t.min()), float(t.max())
    return (t - lo) / max(hi - lo, 1e-6)


def pat_noise(rng, size=256):
    """Multi-octave value noise."""
    return value_noise(rng, size, base=int(rng.integers(2, 12)), octaves=int(rng.integers(2, 6)),
                       persistence=rng.uniform(0.35, 0.7))


def pat_wood(rng, size=256):
    """Wood grain / marble veins: sine of a noise-perturbed coordinate."""
    u, _ = _coords(rng, size)
    n = value_noise(rng, size, base=int(rng.integers(2, 6)), octaves=3)
    t = 0.5 + 0.5 * np.sin(rng.uniform(0.05, 0.4) * u + rng.uniform(2, 12) * n)
    if rng.random() < 0.5:
        t = t ** rng.uniform(2, 6)  # thin veins
    return _norm01(t)


def pat_stripes(rng, size=256):
    """Hard or soft stripes of random angle, period and duty cycle, optionally dirty."""
    u, _ = _coords(rng, size)
    period = rng.uniform(3, 32)
    if rng.random() < 0.3:
        t = 0.5 + 0.5 * np.sin(2 * np.pi * u / period)
    else:
        t = ((u / period) % 1.0 < rng.uniform(0.2, 0.8)).astype(np.float32)
    if rng.random() < 0.5:
        t = t * (0.75 + 0.25 * value_noise(rng, size, 4, 3))
    return _norm01(t)


def pat_checker(rng, size=256):
    """Checkerboard of random angle and period, optionally dirty."""
    u, v = _coords(rng, size)
    p = rng.uniform(4, 32)
    t = ((np.floor(u / p) + np.floor(v / p)) % 2).astype(np.float32)
    if rng.random() < 0.5:
        t = t * (0.8 + 0.2 * value_noise(rng, size, 8, 3))
    return _norm01(t)


BANK_SIZE = 64
BANK_RES = 256
_BANK: list[np.ndarray] | None = None


def pattern_bank() -> list[np.ndarray]:
    """The per-process bank of procedural scalar patterns, planes (1, 256, 256) in [0, 1].

    Built once from fixed seeds (identical in every process): 40% noise, 20% wood /
    marble, 20% stripes, 20% checkerboards.
    """
    global _BANK
    if _BANK is None:
        fns = (pat_noise,) * 8 + (pat_wood,) * 4 + (pat_stripes,) * 4 + (pat_checker,) * 4
        bank = []
        for i in range(BANK_SIZE):
            rng = np.random.default_rng([20240531, i])
            bank.append(np.ascontiguousarray(fns[i % len(fns)](rng, BANK_RES)[None], np.float32))
        _BANK = bank
    return _BANK


_PHOTO_PLANES: list[tuple[np.ndarray, np.ndarray | None]] | None = None


def photo_planes() -> list[tuple[np.ndarray, np.ndarray | None]]:
    """Photographs as planar float32: ``(grey (1, h, w), colour (3, h, w) or None)``."""
    global _PHOTO_PLANES
    if _PHOTO_PLANES is None:
        out = []
        for img, grey in photos():
            f = img.astype(np.float32) / 255.0
            g = np.ascontiguousarray((f @ np.array([0.299, 0.587, 0.114], np.float32))[None])
            out.append((g, None if grey else to_planar(f)))
        _PHOTO_PLANES = out
    return _PHOTO_PLANES


def _two_colours(rng, low_contrast=False):
    c0 = random_colour(rng)
    if low_contrast:
        lo = c0 * np.float32(1 - rng.uniform(0.02, 0.08))
        hi = np.minimum(c0 * np.float32(1 + rng.uniform(0.02, 0.08)), 1)
        return [lo, hi]
    return [c0, random_colour(rng)]


def tex_photo(rng) -> TexImage | None:
    """A random photograph with colour jitter (None if no photos are available).

    Grey photographs (and 15% of colour ones) are colourised through a random dark-to-
    light colour ramp; colour ones get a random channel permutation (30%) and per-channel
    gains in [0.7, 1.2]. Crop, flips, rotation and scale come from the texture mapping.
    """
    ph = photo_planes()
    if not ph:
        return None
    grey, colour = ph[int(rng.integers(len(ph)))]
    if colour is None or rng.random() < 0.15:
        lut = _ramp_lut([random_colour(rng, val=(0.0, 0.4)), random_colour(rng, val=(0.6, 1.0))])
        return TexImage(grey, lut=lut)
    perm = rng.permutation(3) if rng.random() < 0.3 else None
    return TexImage(colour, perm=perm, gain=rng.uniform(0.7, 1.2, size=3).astype(np.float32))


def tex_pattern(rng, low_contrast_p: float = 0.1) -> TexImage:
    """A random pattern from :func:`pattern_bank` through a random 2-3 colour ramp
    (with probability ``low_contrast_p`` two nearly equal colours)."""
    bank = pattern_bank()
    planes = bank[int(rng.integers(len(bank)))]
    if rng.random() < low_contrast_p:
        cols = _two_colours(rng, True)
    else:
        cols = [random_colour(rng) for _ in range(int(rng.integers(2, 4)))]
    return TexImage(planes, lut=_ramp_lut(cols))


def tex_plain(rng, colour=None, contrast=0.04) -> TexImage:
    """Near-uniform paint with faint noise (low-contrast hard cases)."""
    c = random_colour(rng) if colour is None else np.asarray(colour, np.float32)
    bank = pattern_bank()
    noise = [i for i in range(len(bank)) if i % 20 < 8]  # the value-noise patterns
    planes = bank[noise[int(rng.integers(len(noise)))]]
    lut = _ramp_lut([c * np.float32(1 - contrast), np.minimum(c * np.float32(1 + contrast), 1)])
    return TexImage(planes, lut=lut)


def random_texture(rng: np.random.Generator, photo_p: float = 0.4) -> TexImage:
    """A random texture: a photograph with probability ``photo_p`` (if any are
    available), otherwise a procedural pattern."""
    if rng.random() < photo_p:
        t = tex_photo(rng)
        if t is not None:
            return t
    return tex_pattern(rng)
