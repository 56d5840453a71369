"""Synthetic training data for guided depth and optical-flow upsampling.

Everything here is plain numpy (plus Pillow), deterministic by seed and fast enough to
generate on the fly during CPU training: a 256x256 scene takes about 12 ms (depth) or
19 ms (flow) on one core. Scenes for a seed are identical across runs and processes for
the same installed versions (photographs need scikit-image; Pillow's resampling builds
the procedural pattern bank).

Depth scenes (:func:`make_depth_scene`)
    An indoor-like room (floor, ceiling, walls: the inside of an axis-aligned box that
    contains the camera) with boxes, spheres, cylinders, slanted boards, tables and thin
    poles, seen by a perspective pinhole camera (square pixels, principal point at the
    image centre, pixel (i, j) centred at (j + 0.5, i + 0.5)). Every pixel's ray is
    intersected analytically with every primitive whose projected bounding sphere covers
    it, and a z-buffer keeps the nearest hit, so occlusions are exact. ``depth`` is the
    z-depth in the camera frame (metres, not the distance along the ray). Surfaces are
    textured with photographs / procedural patterns (:mod:`pacup.train.textures`) and
    Lambertian-shaded by a point light plus ambient light.

    Hard cases, each with some probability per scene:
      * RGB edges with no depth edge: decals (posters, rugs, painted shapes) on walls and
        floor, stripes / checkerboards / text photographs as textures;
      * depth edges with weak RGB contrast: a box in front of the back wall that wears
        the wall's own (low-contrast) texture, mapped to continue the wall's pattern;
      * thin structures: poles / wires whose radius is chosen so that they are 1-3 px
        wide at the rendered resolution, table legs;
      * smooth slopes: the floor under a tilted camera, large slanted boards and ramps.

Flow scenes (:func:`make_flow_scene`)
    FlyingChairs-style 2-D layers: a textured background plus 2-6 textured foreground
    shapes (ellipses, star-shaped polygons, smooth blobs), each with its own affine motion.
    See :func:`render_flow_layers` for the exact definitions of ``flow`` and ``valid``.

Datasets (:class:`SyntheticDepthDataset`, :class:`SyntheticFlowDataset`)
    Map-style torch datasets; item ``i`` is a pure function of ``(seed, i)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageFilter

from . import textures as T
from .degrade import crop_to_multiple, degrade

_EPS_T = 1e-4
_RAY_CACHE: dict = {}


# ============================================================================ geometry


def _rx(a):
    c, s = math.cos(a), math.sin(a)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]], np.float64)


def _ry(a):
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]], np.float64)


def _rz(a):
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]], np.float64)


def _random_rotation(rng):
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


@dataclass
class Tex:
    """A texture plus its mapping from surface coordinates (metres) to texels.

    ``img``: a :class:`pacup.train.textures.TexImage` (a planar float32 (C, h, w) array
    is wrapped into one). Texel coordinates = ``rot @ uv * tpm + off``.
    """

    img: "T.TexImage | np.ndarray"
    tpm: float  # texels per metre
    rot: np.ndarray = field(default_factory=lambda: np.eye(2, dtype=np.float32))
    off: np.ndarray = field(default_factory=lambda: np.zeros(2, np.float32))

    def __post_init__(self):
        if not isinstance(self.img, T.TexImage):
            self.img = T.TexImage(self.img)

    def colour(self, uv: np.ndarray) -> np.ndarray:
        """Planar colours (3, n) at planar surface coordinates ``uv`` (2, n)."""
        r = np.asarray(self.rot, np.float64) * self.tpm
        u, v = uv[0], uv[1]
        x = u * float(r[0, 0]) + v * float(r[0, 1]) + float(self.off[0])
        y = u * float(r[1, 0]) + v * float(r[1, 1]) + float(self.off[1])
        return self.img.sample(x, y)


@dataclass
class Decal:
    """A flat painted shape on one surface: no depth change, only colour."""

    centre: np.ndarray  # (2,) surface coords, metres
    half: np.ndarray  # (2,) half sizes, metres
    tex: Tex
    ellipse: bool = False

    def apply(self, uv: np.ndarray, col: np.ndarray) -> None:
        """Paint into planar colours ``col`` (3, n) where planar ``uv`` (2, n) is inside."""
        qu = (uv[0] - np.float32(self.centre[0])) / np.float32(self.half[0])
        qv = (uv[1] - np.float32(self.centre[1])) / np.float32(self.half[1])
        if self.ellipse:
            inside = qu * qu + qv * qv <= 1
        else:
            inside = (np.abs(qu) <= 1) & (np.abs(qv) <= 1)
        idx = np.nonzero(inside)[0]
        if len(idx):
            c = np.asarray(self.centre, np.float32)[:, None]
            col[:, idx] = self.tex.colour(uv[:, idx] - c)


class Prim:
    """Base class of ray-traceable primitives.

    Rays start at the world origin; directions are planar arrays ``d`` (3, n). Subclasses
    implement ``intersect(d) -> (t (n,), sub (n,))`` with ``t = inf`` for a miss and
    ``surface(p, sub) -> (normal (3, n), uv (2, n) metres)`` for hit points ``p`` (3, n)
    on sub-surface ``sub``.
    """

    n_sub = 1

    def __init__(self, tex):
        self.tex = tex if isinstance(tex, list) else [tex] * self.n_sub
        self.decals: list[list[Decal]] = [[] for _ in range(self.n_sub)]

    def bound(self):  # (points (k, 3), pad radius) in world coordinates, or None = everywhere
        return None

    def intersect(self, d: np.ndarray):
        raise NotImplementedError

    def surface(self, p: np.ndarray, sub: int):
        raise NotImplementedError


def _local(R: np.ndarray, c: np.ndarray, d: np.ndarray):
    """Ray origin (3,) and planar directions (3, n) in a local frame (columns of R)."""
    return -(c @ R), R.T @ d


class Room(Prim):
    """Inside of the axis-aligned box [lo, hi] (must strictly contain the origin).

    Faces (sub ids): 2*axis + 0 is the ``lo`` face, 2*axis + 1 the ``hi`` face, i.e.
    0/1 left/right wall, 2 ceiling (y is down), 3 floor, 4 front wall, 5 back wall.
    """

    n_sub = 6
    _UV = ((2, 1), (0, 2), (0, 1))

    def __init__(self, lo, hi, tex):
        self.lo = np.asarray(lo, np.float32)
        self.hi = np.asarray(hi, np.float32)
        super().__init__(tex)

    def intersect(self, d):
        t = sub = None
        for a in range(3):
            da = d[a]
            pos = da > 0
            with np.errstate(divide="ignore", invalid="ignore"):
                ta = np.abs(np.where(pos, self.hi[a], self.lo[a]) / da)  # da == 0 -> inf
            sa = pos.astype(np.int64) + 2 * a
            if t is None:
                t, sub = ta, sa
            else:
                m = ta < t
                t = np.where(m, ta, t)
                sub = np.where(m, sa, sub)
        return t, sub

    def surface(self, p, sub):
        ax, side = divmod(sub, 2)
        n = np.zeros_like(p)
        n[ax] = -1.0 if side else 1.0
        a, b = self._UV[ax]
        return n, p[[a, b]]


class Box(Prim):
    """Oriented box: centre ``c``, rotation ``R`` (columns = local axes), half sizes."""

    n_sub = 6
    _UV = ((2, 1), (0, 2), (0, 1))

    def __init__(self, c, R, half, tex):
        self.c = np.asarray(c, np.float32)
        self.R = np.asarray(R, np.float32)
        self.h = np.asarray(half, np.float32)
        super().__init__(tex)

    def bound(self):
        sg = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], np.float32)
        return self.c + (sg * self.h) @ self.R.T, 0.0

    def intersect(self, d):
        o, dl = _local(self.R, self.c, d)
        tmin = tmax = sub = None
        for a in range(3):
            with np.errstate(divide="ignore", invalid="ignore"):
                inv = 1.0 / dl[a]
                t1 = (-self.h[a] - o[a]) * inv
                t2 = (self.h[a] - o[a]) * inv
            tn = np.minimum(t1, t2)
            tf = np.maximum(t1, t2)
            sa = (dl[a] < 0).astype(np.int64) + 2 * a  # enters through the +h face if dl < 0
            if tmin is None:
                tmin, tmax, sub = tn, tf, sa
            else:
                m = tn > tmin
                tmin = np.where(m, tn, tmin)
                sub = np.where(m, sa, sub)
                tmax = np.minimum(tmax, tf)
        hit = (tmin <= tmax) & (tmin > _EPS_T)
        return np.where(hit, tmin, np.inf), sub

    def surface(self, p, sub):
        ax, side = divmod(sub, 2)
        pl = self.R.T @ (p - self.c[:, None])
        n = np.broadcast_to((self.R[:, ax] * (1.0 if side else -1.0))[:, None], p.shape)
        a, b = self._UV[ax]
        return n, pl[[a, b]] + self.h[[a, b]][:, None]


class Sphere(Prim):
    def __init__(self, c, r, tex, R=None):
        self.c = np.asarray(c, np.float32)
        self.r = float(r)
        self.R = np.eye(3, dtype=np.float32) if R is None else np.asarray(R, np.float32)
        super().__init__(tex)

    def bound(self):
        return self.c[None], self.r

    def intersect(self, d):
        a = d[0] * d[0] + d[1] * d[1] + d[2] * d[2]
        b = self.c @ d
        cc = float(self.c @ self.c) - self.r * self.r
        disc = b * b - a * cc
        with np.errstate(invalid="ignore"):
            t = (b - np.sqrt(disc)) / a
        hit = (disc >= 0) & (t > _EPS_T)
        return np.where(hit, t, np.inf), np.zeros(d.shape[1], np.int64)

    def surface(self, p, sub):
        n = (p - self.c[:, None]) / np.float32(self.r)
        q = np.clip(self.R.T @ n, -1, 1)
        uv = np.stack([self.r * np.arctan2(q[0], q[2]), self.r * np.arccos(q[1])])
        return n, uv


class Cylinder(Prim):
    """Finite capped cylinder; its axis is the local y axis ``R[:, 1]``. Subs: 0 side, 1 cap."""

    n_sub = 2

    def __init__(self, c, R, r, half_len, tex):
        self.c = np.asarray(c, np.float32)
        self.R = np.asarray(R, np.float32)
        self.r = float(r)
        self.hl = float(half_len)
        super().__init__(tex)

    def bound(self):
        a = self.R[:, 1] * self.hl
        return np.stack([self.c - a, self.c + a]), self.r

    def intersect(self, d):
        o, dl = _local(self.R, self.c, d)
        dx, dy, dz = dl[0], dl[1], dl[2]
        a = dx * dx + dz * dz
        b = float(o[0]) * dx + float(o[2]) * dz
        cc = float(o[0]) ** 2 + float(o[2]) ** 2 - self.r ** 2
        disc = b * b - a * cc
        with np.errstate(invalid="ignore", divide="ignore"):
            ts = (-b - np.sqrt(disc)) / a
            ys = float(o[1]) + ts * dy
        hit_s = (disc >= 0) & (ts > _EPS_T) & (np.abs(ys) <= self.hl)
        t = np.where(hit_s, ts, np.inf)
        sub = np.zeros(d.shape[1], np.int64)
        if abs(o[1]) > self.hl:
            yc = math.copysign(self.hl, float(o[1]))
            with np.errstate(invalid="ignore", divide="ignore"):
                tc = (yc - float(o[1])) / dy
            xc = float(o[0]) + tc * dx
            zc = float(o[2]) + tc * dz
            hit_c = (tc > _EPS_T) & (xc * xc + zc * zc <= self.r ** 2) & (tc < t)
            t = np.where(hit_c, tc, t)
            sub[hit_c] = 1
        return t, sub

    def surface(self, p, sub):
        pl = self.R.T @ (p - self.c[:, None])
        if sub == 1:
            s = np.where(pl[1] > 0, np.float32(1), np.float32(-1))
            return self.R[:, 1][:, None] * s, pl[[0, 2]]
        nl = np.stack([pl[0], np.zeros_like(pl[0]), pl[2]]) / np.float32(self.r)
        uv = np.stack([self.r * np.arctan2(pl[0], pl[2]), pl[1]])
        return self.R @ nl, uv


@dataclass
class DepthScene:
    """Everything :func:`render_depth_scene` needs. World frame: y points down."""

    f: float  # focal length, pixels
    R_cam: np.ndarray  # world_dir = R_cam @ camera_dir
    prims: list
    light_pos: np.ndarray = field(default_factory=lambda: np.array([0.0, -1.5, 2.0]))
    light_falloff: float = 5.0
    light_gain: float = 1.0
    ambient: float = 0.35
    noise_std: float = 0.0  # Gaussian pixel noise, in [0, 1] units
    blur: float = 0.0  # Gaussian blur radius of the RGB (optical blur), pixels


def camera_rays(height: int, width: int, f: float) -> np.ndarray:
    """Planar camera-frame ray directions (3, H, W) with z = 1, so a hit's ``t`` is its z-depth."""
    key = (height, width, float(f))
    r = _RAY_CACHE.get(key)
    if r is None:
        if len(_RAY_CACHE) > 64:
            _RAY_CACHE.clear()
        x = (np.arange(width, dtype=np.float32) + 0.5 - width / 2) / np.float32(f)
        y = (np.arange(height, dtype=np.float32) + 0.5 - height / 2) / np.float32(f)
        r = np.empty((3, height, width), np.float32)
        r[0] = x[None, :]
        r[1] = y[:, None]
        r[2] = 1.0
        r.setflags(write=False)
        _RAY_CACHE[key] = r
    return r


def _screen_rect(scene: DepthScene, bound, height, width):
    """Conservative pixel rectangle (y0, y1, x0, x1) covering the convex hull of balls of
    radius ``pad`` around world points (perspective maps it onto the hull of their images)."""
    full = (0, height, 0, width)
    if bound is None:
        return full
    pts, r = bound
    cc = np.asarray(pts, np.float64) @ np.asarray(scene.R_cam, np.float64)  # camera frame
    if (cc[:, 2] - r).min() < 0.05:
        return full
    zs = np.stack([cc[:, 2] - r, cc[:, 2] + r], 1)
    xs = np.concatenate([(cc[:, :1] - r) / zs, (cc[:, :1] + r) / zs])
    ys = np.concatenate([(cc[:, 1:2] - r) / zs, (cc[:, 1:2] + r) / zs])
    f = scene.f
    x0 = int(math.floor(xs.min() * f + width / 2 - 1.5))
    x1 = int(math.ceil(xs.max() * f + width / 2 + 1.5))
    y0 = int(math.floor(ys.min() * f + height / 2 - 1.5))
    y1 = int(math.ceil(ys.max() * f + height / 2 + 1.5))
    x0, x1 = max(0, x0), min(width, x1)
    y0, y1 = max(0, y0), min(height, y1)
    if x0 >= x1 or y0 >= y1:
        return None
    return y0, y1, x0, x1


def render_depth_scene(scene: DepthScene, height: int, width: int,
                       rng: np.random.Generator | None = None, texture_gain: float = 1.0) -> dict:
    """Ray-cast ``scene``: returns ``rgb`` uint8 (H, W, 3), ``depth`` float32 (H, W) metres.

    ``depth`` is the camera-frame z of the nearest hit (``inf`` where nothing is hit;
    scenes from :func:`make_depth_scene` are closed rooms, so never). ``rng`` draws the
    pixel noise (only needed when ``scene.noise_std > 0``).

    ``texture_gain`` multiplies each visible surface's texture (decals included) about that
    surface's mean colour in the view, before shading, clipped to [0, 1]: colour edges inside
    a surface grow, the steps between surfaces (their mean colours) mostly stay
    (``benchmarks/edge_profile.py --texture-gain`` measures both).
    """
    if not texture_gain > 0:
        raise ValueError(f"texture_gain must be > 0, got {texture_gain!r}")
    R = np.asarray(scene.R_cam, np.float32)
    d_w = (R @ camera_rays(height, width, scene.f).reshape(3, -1)).reshape(3, height, width)
    depth = np.full((height, width), np.inf, np.float32)
    sid = np.full((height, width), -1, np.int32)
    owners: list[tuple[int, int]] = []  # surface id -> (prim index, sub)
    for k, prim in enumerate(scene.prims):
        base = len(owners)
        owners.extend((k, s) for s in range(prim.n_sub))
        rect = _screen_rect(scene, prim.bound(), height, width)
        if rect is None:
            continue
        y0, y1, x0, x1 = rect
        dv = d_w[:, y0:y1, x0:x1].reshape(3, -1)
        t, sub = prim.intersect(dv)
        zb = depth[y0:y1, x0:x1]
        sb = sid[y0:y1, x0:x1]
        t = t.reshape(zb.shape)
        m = t < zb
        zb[m] = t[m]
        sb[m] = (base + sub).reshape(zb.shape)[m]

    # shading, one surface at a time
    flat_sid = sid.ravel()
    flat_t = depth.ravel()
    flat_d = d_w.reshape(3, -1)
    rgb = np.zeros((3, height * width), np.float32)
    order = np.argsort(flat_sid, kind="stable")
    counts = np.bincount(flat_sid + 1, minlength=len(owners) + 1)
    starts = np.concatenate([[0], np.cumsum(counts)])
    light = np.asarray(scene.light_pos, np.float32)[:, None]
    fall2 = np.float32(scene.light_falloff ** 2)
    for s in range(len(owners)):
        idx = order[starts[s + 1]:starts[s + 2]]
        if len(idx) == 0:
            continue
        k, sub = owners[s]
        prim = scene.prims[k]
        dsel = flat_d.take(idx, axis=1)
        p = dsel * flat_t.take(idx)
        n, uv = prim.surface(p, sub)
        col = prim.tex[sub].colour(uv)
        for dec in prim.decals[sub]:
            dec.apply(uv, col)
        if texture_gain != 1:
            m = col.mean(axis=1, keepdims=True)
            col = np.clip(m + np.float32(texture_gain) * (col - m), 0, 1)  # still an albedo
        L = light - p
        dist2 = (L * L).sum(0)
        ndl = (n * L).sum(0)
        ndl *= np.where((n * dsel).sum(0) > 0, np.float32(-1), np.float32(1))  # face the camera
        np.maximum(ndl, 0, out=ndl)
        shade = np.float32(scene.ambient) + np.float32(scene.light_gain) * ndl / np.sqrt(dist2 + 1e-12) \
            * (fall2 / (fall2 + dist2))
        col *= shade
        for c in range(3):
            rgb[c].put(idx, col[c])
    if scene.noise_std > 0:
        rng = rng if rng is not None else np.random.default_rng(0)
        rgb += rng.standard_normal(rgb.shape, dtype=np.float32) * np.float32(scene.noise_std)
    np.clip(rgb, 0, 1, out=rgb)
    rgb *= 255
    rgb += 0.5
    out = np.ascontiguousarray(rgb.astype(np.uint8).reshape(3, height, width).transpose(1, 2, 0))
    if scene.blur > 0:
        out = np.asarray(Image.fromarray(out).filter(ImageFilter.GaussianBlur(scene.blur)))
    return {"rgb": out, "depth": depth}


# ================================================================ random depth scenes


def _loguniform(rng, a, b):
    return float(math.exp(rng.uniform(math.log(a), math.log(b))))


def _tex_for(rng, img, f, z, k=None):
    """Texture mapping so that one texel covers about k pixels at depth z."""
    k = _loguniform(rng, 0.8, 3.0) if k is None else k
    a = rng.uniform(0, 2 * math.pi)
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]], np.float32)
    off = rng.uniform(0, 512, 2).astype(np.float32)
    return Tex(img, float(f / (k * max(z, 0.3))), rot, off)


def _rand_tex(rng, f, z, photo_p=0.4, k=None):
    return _tex_for(rng, T.random_texture(rng, photo_p), f, z, k)


def make_depth_scene(seed: int, height: int, width: int, return_scene: bool = False,
                     clutter: float = 0.0, texture_gain: float = 1.0) -> dict:
    """A random indoor-like RGB-D frame, deterministic in ``seed``.

    Returns ``dict(rgb=uint8 (H, W, 3), depth=float32 (H, W))``; depth is z-depth in
    metres, finite and > 0 everywhere, roughly 0.5-10 m. With ``return_scene`` the
    :class:`DepthScene` is included under ``"scene"``. ``clutter``: probability that the
    scene also gets :func:`_add_clutter`'s shelves, open frames and heaps of small objects
    (drawn from a stream of their own, so the rest of the scene is the same either way).
    ``texture_gain``: see :func:`render_depth_scene` (the scene and depth do not change).
    """
    rng = np.random.default_rng(seed)
    H, W = int(height), int(width)
    fov = math.radians(rng.uniform(50, 70))
    f = W / 2 / math.tan(fov / 2)
    yaw = math.radians(rng.uniform(-30, 30))
    pitch = math.radians(rng.uniform(-5, 25))
    roll = math.radians(rng.uniform(-4, 4))
    R_cam = _ry(yaw) @ _rx(-pitch) @ _rz(roll)

    cam_h = rng.uniform(0.9, 1.6)
    room_h = rng.uniform(2.4, 3.2)
    D = rng.uniform(2.5, 8.5)
    lo = np.array([-rng.uniform(1.2, 4.5), cam_h - room_h, -rng.uniform(0.5, 2.0)])
    hi = np.array([rng.uniform(1.2, 4.5), cam_h, D])
    mid = 0.5 * D + 1

    camo = rng.random() < 0.35  # hard case: object with the wall's own texture
    if camo:
        col = T.random_colour(rng)
        wall_img = T.tex_plain(rng, col, contrast=rng.uniform(0.02, 0.1))
        wall = _tex_for(rng, wall_img, f, D)
        wall.rot = np.eye(2, dtype=np.float32)
    else:
        wall = _rand_tex(rng, f, D, photo_p=0.3)
    walls = [wall if rng.random() < 0.6 else _rand_tex(rng, f, mid, 0.3) for _ in range(6)]
    walls[5] = wall
    walls[2] = _tex_for(rng, T.tex_plain(rng, contrast=0.05), f, mid)  # ceiling
    walls[3] = _rand_tex(rng, f, mid, photo_p=0.35)  # floor
    room = Room(lo, hi, walls)
    prims: list[Prim] = [room]

    scene = DepthScene(f=f, R_cam=R_cam, prims=prims)

    def world_ray(u, v):
        dc = np.array([(u - W / 2) / f, (v - H / 2) / f, 1.0], np.float32)
        return (np.asarray(R_cam, np.float32) @ dc).astype(np.float32)

    def room_hit(u, v):
        d = world_ray(u, v)
        t, sub = room.intersect(d[:, None])
        return d, float(t[0]), int(sub[0])

    # --- decals: RGB edges without depth edges
    if rng.random() < 0.7:
        for _ in range(int(rng.integers(1, 5))):
            d, t, sub = room_hit(rng.uniform(0.05, 0.95) * W, rng.uniform(0.05, 0.95) * H)
            if not np.isfinite(t):
                continue
            p = t * d
            ax = sub // 2
            a, b = Room._UV[ax]
            c = p[[a, b]].astype(np.float32)
            half = (rng.uniform(8, 50, 2) * t / f).astype(np.float32)
            dt = _rand_tex(rng, f, t, photo_p=0.6, k=_loguniform(rng, 0.5, 2.0))
            room.decals[sub].append(Decal(c, half, dt, ellipse=rng.random() < 0.25))

    def place(z_lo=0.7, margin=0.3, g=rng):
        """Random pixel -> world point inside the room, in front of the wall (drawn from ``g``)."""
        u, v = g.uniform(0.05, 0.95) * W, g.uniform(0.1, 0.95) * H
        d, t, _ = room_hit(u, v)
        if not np.isfinite(t) or t - margin < z_lo:
            return None
        z = _loguniform(g, z_lo, t - margin)
        return (z * d).astype(np.float64)

    def clamp_in_room(P, ext):
        return np.clip(P, lo + ext, hi - ext)

    def ok(P, rad):
        return float(np.linalg.norm(P)) > rad + 0.25

    # --- ordinary objects; sizes follow their apparent size (3-25% of the width)
    n_obj = int(rng.integers(3, 11))
    for _ in range(n_obj):
        P = place()
        if P is None:
            continue
        z = float(P @ R_cam[:, 2])
        sm = float(np.clip(_loguniform(rng, 0.03, 0.25) * W * z / f, 0.05, 1.0))
        kind = rng.choice(5, p=[0.32, 0.22, 0.18, 0.14, 0.14])
        tex = _rand_tex(rng, f, z)
        if kind == 0:  # box
            half = sm * rng.uniform(0.4, 1.0, 3)
            if rng.random() < 0.7:
                R = _ry(rng.uniform(0, math.pi))
                P[1] = cam_h - half[1]
            else:
                R = _random_rotation(rng)
            P = clamp_in_room(P, np.full(3, 0.0))
            if ok(P, np.linalg.norm(half)):
                texs = tex if rng.random() < 0.7 else [_rand_tex(rng, f, z) for _ in range(6)]
                prims.append(Box(P, R, half, texs))
        elif kind == 1:  # sphere
            r = sm
            if rng.random() < 0.5:
                P[1] = cam_h - r
            P = clamp_in_room(P, np.full(3, r))
            if ok(P, r):
                prims.append(Sphere(P, r, tex, _random_rotation(rng)))
        elif kind == 2:  # cylinder
            r = sm * rng.uniform(0.15, 0.6)
            hl = sm * rng.uniform(0.5, 1.5)
            if rng.random() < 0.6:
                R = _ry(rng.uniform(0, math.pi))
                P[1] = cam_h - hl
            else:
                R = _random_rotation(rng)
            if ok(P, math.hypot(r, hl)):
                prims.append(Cylinder(P, R, r, hl, [tex, _rand_tex(rng, f, z)]))
        elif kind == 3:  # slanted board (smooth slope)
            half = np.array([sm * rng.uniform(0.8, 2.0), rng.uniform(0.01, 0.03), sm * rng.uniform(0.6, 1.6)])
            R = _ry(rng.uniform(0, math.pi)) @ _rx(rng.uniform(-1.2, 1.2)) @ _rz(rng.uniform(-0.5, 0.5))
            if rng.random() < 0.4:  # ramp on the floor
                R = _ry(rng.uniform(0, math.pi)) @ _rx(rng.uniform(0.15, 0.5))
                P[1] = cam_h - half[2] * math.sin(rng.uniform(0.15, 0.5)) - 0.01
            if ok(P, np.linalg.norm(half)):
                prims.append(Box(P, R, half, tex))
        else:  # table: top + 4 thin legs
            top = np.array([np.clip(sm * rng.uniform(0.8, 1.3), 0.25, 0.8), rng.uniform(0.015, 0.04),
                            np.clip(sm * rng.uniform(0.6, 1.0), 0.2, 0.6)])
            height_t = rng.uniform(0.45, 0.95)
            R = _ry(rng.uniform(0, math.pi))
            P[1] = cam_h - height_t
            if not ok(P, np.linalg.norm(top) + height_t):
                continue
            prims.append(Box(P, R, top, tex))
            leg_r = rng.uniform(0.012, 0.035)
            leg_tex = _rand_tex(rng, f, z)
            hl = (height_t - top[1]) / 2
            for sx in (-1, 1):
                for sz in (-1, 1):
                    off = R @ np.array([sx * (top[0] - 2 * leg_r), 0, sz * (top[2] - 2 * leg_r)])
                    c = P + off
                    c[1] = cam_h - hl
                    prims.append(Cylinder(c, np.eye(3), leg_r, hl, leg_tex))

    # --- hard case: depth edge with weak RGB contrast
    if camo:
        u, v = rng.uniform(0.2, 0.8) * W, rng.uniform(0.2, 0.7) * H
        d, t, sub = room_hit(u, v)
        if sub == 5 and np.isfinite(t):
            P = (t * d).astype(np.float64)
            half = np.array([rng.uniform(0.15, 0.7), rng.uniform(0.15, 0.7), rng.uniform(0.05, 0.3)])
            P[2] = D - rng.uniform(0.05, 0.6) - half[2]
            P[1] = min(P[1], cam_h - half[1])
            if ok(P, np.linalg.norm(half)):
                # continue the wall's texture mapping on the box's front face
                off = wall.off + wall.tpm * (wall.rot @ (P[:2] - half[:2])).astype(np.float32)
                t2 = Tex(wall.img, wall.tpm, wall.rot, off.astype(np.float32))
                prims.append(Box(P, np.eye(3), half, t2))

    # --- hard case: thin poles / wires, 1-3 px wide
    if rng.random() < 0.5:
        for _ in range(int(rng.integers(1, 4))):
            P = place(z_lo=0.8, margin=0.2)
            if P is None:
                continue
            z = float(P @ R_cam[:, 2])
            r = rng.uniform(1.0, 3.0) * z / (2 * f)
            tex = _rand_tex(rng, f, z, photo_p=0.2)
            if rng.random() < 0.6:  # vertical, floor to ceiling or floor to some height
                full = rng.random() < 0.5
                top_y = lo[1] if full else cam_h - rng.uniform(0.5, 2.0)
                hl = (cam_h - top_y) / 2
                c = np.array([P[0], cam_h - hl, P[2]])
                prims.append(Cylinder(c, np.eye(3), r, hl, tex))
            else:  # wire / leaning pole
                R = _random_rotation(rng)
                hl = rng.uniform(0.5, 1.8)
                if ok(P, hl):
                    prims.append(Cylinder(P, R, r, hl, tex))

    if clutter > 0:
        crng = np.random.default_rng([seed, 5])
        if crng.random() < clutter:
            _add_clutter(crng, prims, lambda **kw: place(g=crng, **kw), f, cam_h, R_cam)

    # --- light
    scene.light_pos = np.array([rng.uniform(lo[0], hi[0]), lo[1] + rng.uniform(0.1, 0.6),
                                rng.uniform(0.0, D)], np.float32)
    scene.light_falloff = rng.uniform(3.0, 8.0)
    scene.ambient = rng.uniform(0.25, 0.5)
    scene.light_gain = rng.uniform(0.9, 1.6)
    scene.noise_std = rng.uniform(0, 0.012)
    scene.blur = rng.uniform(0.3, 0.7) if rng.random() < 0.4 else 0.0

    out = render_depth_scene(scene, H, W, rng, texture_gain=texture_gain)
    if return_scene:
        out["scene"] = scene
    return out


def _add_clutter(rng, prims: list, place, f: float, floor_y: float, R_cam) -> None:
    """Dense depth edges, as in real rooms (workshops, shelves, vehicles): more edges per
    pixel and more kinds of silhouette than the few objects of the base scene.

    * shelf units: thin boards on thin posts, a row of boxes of mixed sizes on each board;
    * open frames: rings of thin rods (wheel rims, chair backs, railings) with spokes or
      cross bars, the background showing through;
    * heaps: 5-20 small boxes, spheres and cylinders close together at one depth.
    """
    for _ in range(int(rng.integers(1, 4))):
        P = place(z_lo=1.0, margin=0.4)
        if P is None:
            continue
        z = float(P @ R_cam[:, 2])
        kind = rng.choice(3, p=[0.3, 0.35, 0.35])
        if kind == 0:  # shelf unit
            w, dpt = rng.uniform(0.5, 1.5), rng.uniform(0.2, 0.45)
            levels = int(rng.integers(2, 5))
            gap = rng.uniform(0.25, 0.45)
            R = _ry(rng.uniform(-0.6, 0.6))
            tex = _rand_tex(rng, f, z)
            base_y = floor_y
            for lv in range(levels):
                y = base_y - (lv + 0.3) * gap
                c = P.copy()
                c[1] = y
                prims.append(Box(c, R, np.array([w / 2, rng.uniform(0.01, 0.025), dpt / 2]), tex))
                x = -w / 2 + 0.03
                while x < w / 2 - 0.05:
                    bw = rng.uniform(0.04, 0.2)
                    bh = rng.uniform(0.05, gap * 0.85)
                    if rng.random() < 0.75 and x + bw < w / 2:
                        bc = c + R @ np.array([x + bw / 2, -bh / 2 - 0.02, rng.uniform(-0.3, 0.3) * dpt])
                        prims.append(Box(bc, R @ _ry(rng.uniform(-0.3, 0.3)), np.array([bw / 2, bh / 2,
                                         rng.uniform(0.3, 0.5) * dpt]), _rand_tex(rng, f, z)))
                    x += bw + rng.uniform(0.0, 0.08)
            post_r = rng.uniform(0.01, 0.025)
            hl = (levels * gap) / 2
            for sx in (-1, 1):
                for sz in (-1, 1):
                    c = P + R @ np.array([sx * w / 2, 0, sz * dpt / 2])
                    c[1] = base_y - hl
                    prims.append(Cylinder(c, np.eye(3), post_r, hl, tex))
        elif kind == 1:  # open frame: a ring of rods with spokes
            rad = rng.uniform(0.15, 0.5) * min(1.0, z / 2)
            rod = rng.uniform(1.5, 5.0) * z / f
            n = int(rng.integers(10, 20))
            R = _random_rotation(rng) if rng.random() < 0.4 else _ry(rng.uniform(-1.2, 1.2))
            tex = _rand_tex(rng, f, z, photo_p=0.2)
            pts = [P + R @ np.array([rad * math.cos(a), rad * math.sin(a), 0.0])
                   for a in np.linspace(0, 2 * math.pi, n + 1)]
            spokes = int(rng.integers(0, 9))
            ends = [(pts[i], pts[i + 1], rod) for i in range(n)]
            ends += [(P, pts[int(i * n / max(spokes, 1))], rod * rng.uniform(0.4, 0.8)) for i in range(spokes)]
            for a, b, r in ends:
                a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
                axis = b - a
                ln = float(np.linalg.norm(axis))
                if ln < 1e-6:
                    continue
                y = axis / ln
                x = np.cross(y, [0.3, 0.5, 0.8])
                x /= np.linalg.norm(x)
                Rr = np.stack([x, y, np.cross(x, y)], 1)
                prims.append(Cylinder((a + b) / 2, Rr, r, ln / 2 + r, tex))
        else:  # heap of small objects
            for _ in range(int(rng.integers(5, 21))):
                c = P + rng.normal(0, 0.12, 3) * np.array([1.5, 1.0, 1.0])
                sz = _loguniform(rng, 0.015, 0.08)
                tex = _rand_tex(rng, f, z)
                k = rng.integers(3)
                if k == 0:
                    prims.append(Box(c, _random_rotation(rng), sz * rng.uniform(0.4, 1.2, 3), tex))
                elif k == 1:
                    prims.append(Sphere(c, sz, tex, _random_rotation(rng)))
                else:
                    prims.append(Cylinder(c, _random_rotation(rng), sz * rng.uniform(0.2, 0.6),
                                          sz * rng.uniform(0.8, 2.5), tex))


# ========================================================================= flow scenes


def _affine_apply(A: np.ndarray, x: np.ndarray, y: np.ndarray):
    """Apply a 2x3 affine to point arrays; the result keeps the dtype of x and y."""
    (a, b, c), (d, e, f) = np.asarray(A, np.float64).tolist()
    u = x * a
    u += y * b
    u += c
    v = x * d
    v += y * e
    v += f
    return u, v


def affine_inverse(A: np.ndarray) -> np.ndarray:
    """Inverse of a 2x3 affine map."""
    M = np.asarray(A, np.float64)[:, :2]
    t = np.asarray(A, np.float64)[:, 2]
    Mi = np.linalg.inv(M)
    return np.concatenate([Mi, (-Mi @ t)[:, None]], 1)


def affine_about(centre, angle=0.0, scale=1.0, shift=(0.0, 0.0)) -> np.ndarray:
    """2x3 affine: rotate by ``angle`` (rad) and scale about ``centre``, then shift."""
    c, s = math.cos(angle) * scale, math.sin(angle) * scale
    M = np.array([[c, -s], [s, c]])
    cx, cy = centre
    t = np.array([cx, cy]) - M @ np.array([cx, cy]) + np.asarray(shift, np.float64)
    return np.concatenate([M, t[:, None]], 1)


@dataclass
class Shape:
    """A 2-D region in img0 pixel coordinates (x right, y down).

    kind ``"ellipse"`` (``half`` = semi-axes, ``angle``), ``"polygon"`` (``verts`` (n, 2),
    even-odd rule), ``"blob"`` (star-shaped: radius ``half[0] * (1 + sum a_k cos(k
    theta + phi_k))`` with anisotropy ``half[1] / half[0]`` and rotation ``angle``) or
    ``"frame"`` (chair-like: the polygon ``verts`` (may be None) united with thick
    segments ``strokes`` (m, 5) = x0, y0, x1, y1, half width, all in image pixels).
    """

    kind: str
    centre: np.ndarray
    half: np.ndarray = field(default_factory=lambda: np.ones(2))
    angle: float = 0.0
    verts: np.ndarray | None = None
    harm: np.ndarray | None = None  # (m, 3): k, a_k, phi_k for blobs
    strokes: np.ndarray | None = None  # (m, 5): x0, y0, x1, y1, half width for frames

    def radius(self) -> float:
        if self.kind == "polygon":
            return float(np.linalg.norm(self.verts - self.centre, axis=1).max())
        if self.kind == "frame":
            st = np.asarray(self.strokes, np.float64)
            r = float(np.max(np.hypot(st[:, [0, 2]] - self.centre[0], st[:, [1, 3]] - self.centre[1])
                             + st[:, 4:5]))
            if self.verts is not None:
                r = max(r, float(np.linalg.norm(self.verts - self.centre, axis=1).max()))
            return r
        r = float(np.max(self.half))
        if self.kind == "blob":
            r *= 1 + float(np.abs(self.harm[:, 1]).sum())
        return r

    def contains(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Boolean mask of the points (x, y) (1-D arrays) inside the shape."""
        cx, cy = float(self.centre[0]), float(self.centre[1])
        R = self.radius() + 1.0
        pre = (np.abs(x - cx) <= R) & (np.abs(y - cy) <= R)
        out = np.zeros(x.shape, bool)
        idx = np.nonzero(pre)[0]
        if len(idx) == 0:
            return out
        px = x[idx] - cx
        py = y[idx] - cy
        if self.kind == "frame":
            ins = np.zeros(len(idx), bool)
            if self.verts is not None:
                ins = Shape("polygon", self.centre, verts=self.verts).contains(x[idx], y[idx])
            for x0, y0, x1, y1, hw in np.asarray(self.strokes, np.float64).tolist():
                # distance from each point to the segment (x0, y0)-(x1, y1)
                ax, ay = x0 - cx, y0 - cy
                dx, dy = x1 - x0, y1 - y0
                t = np.clip(((px - ax) * dx + (py - ay) * dy) / max(dx * dx + dy * dy, 1e-12), 0.0, 1.0)
                ex, ey = px - ax - t * dx, py - ay - t * dy
                ins |= ex * ex + ey * ey <= hw * hw
            out[idx] = ins
            return out
        if self.kind == "polygon":
            v = (np.asarray(self.verts, np.float64) - self.centre).tolist()
            ins = np.zeros(len(idx), bool)
            n = len(v)
            for i in range(n):
                xi, yi = v[i]
                xj, yj = v[(i + 1) % n]
                if yi == yj:
                    continue
                cross = (py < yi) != (py < yj)
                xint = (py - yi) * ((xj - xi) / (yj - yi)) + xi
                ins ^= cross & (px < xint)
            out[idx] = ins
            return out
        c, s = math.cos(self.angle), math.sin(self.angle)
        hx, hy = float(self.half[0]), float(self.half[1])
        qx = (px * c + py * s) / hx
        qy = (py * c - px * s) / hy
        r2 = qx * qx + qy * qy
        if self.kind == "ellipse":
            out[idx] = r2 <= 1.0
        elif self.kind == "blob":
            th = np.arctan2(qy, qx)
            rad = np.ones_like(th)
            for k, amp, ph in np.asarray(self.harm, np.float64).tolist():
                rad += amp * np.cos(th * k + ph)
            out[idx] = r2 <= rad * rad
        else:
            raise ValueError(f"unknown shape kind {self.kind!r}")
        return out


@dataclass
class FlowLayer:
    """One rigid 2-D layer: texture, extent and motion.

    ``texture`` a :class:`pacup.train.textures.TexImage` or an (h, w, 3) float32 image in
    [0, 1]; ``tex_affine`` (2x3) maps img0 pixel
    coordinates to its texel coordinates (mirrored repetition outside). ``motion`` (2x3)
    maps an img0 point of this layer to its img1 position. ``shape`` None means the
    layer covers the whole plane.
    """

    texture: "T.TexImage | TwoToneTexture | np.ndarray"
    tex_affine: np.ndarray
    motion: np.ndarray
    shape: Shape | None = None

    def __post_init__(self):
        if isinstance(self.texture, np.ndarray):
            self.texture = T.TexImage.from_hwc(self.texture)

    def contains(self, x, y):
        if self.shape is None:
            return np.ones(x.shape, bool)
        return self.shape.contains(x, y)

    def colour(self, x, y):
        """Planar (3, n) colours at img0-frame points."""
        tx, ty = _affine_apply(self.tex_affine, x, y)
        return self.texture.sample(tx, ty)


def _rect(pts: np.ndarray, H: int, W: int):
    """Pixel-grid slice (y0, y1, x0, x1) covering points (k, 2), or None if off-image."""
    x0 = max(0, int(math.floor(pts[:, 0].min())) - 1)
    x1 = min(W, int(math.ceil(pts[:, 0].max())) + 2)
    y0 = max(0, int(math.floor(pts[:, 1].min())) - 1)
    y1 = min(H, int(math.ceil(pts[:, 1].max())) + 2)
    if x0 >= x1 or y0 >= y1:
        return None
    return y0, y1, x0, x1


def render_flow_layers(layers: list[FlowLayer], height: int, width: int) -> dict:
    """Render two frames of back-to-front layers (``layers[0]`` is the back).

    Pixel (i, j) is the point (x=j, y=i). ``img0`` shows every layer at its own
    position; ``img1`` is rendered by inverse warping: img1(x1) = colour of the
    frontmost layer k with x0 = motion_k^-1(x1) inside its shape, sampled at x0.

    * ``flow[i, j]`` = motion_k(x0) - x0 for the frontmost layer k at x0 = (j, i) in img0
      (u right, v down, pixels, img0 -> img1). It is exact for every pixel, occluded or not.
    * ``valid[i, j]`` = the img0 pixel is *not occluded* in img1: no layer in front of k
      covers its img1 position motion_k(x0). (Leaving the frame does not make a pixel
      invalid; see ``inside``.)
    * ``inside[i, j]`` = motion_k(x0) falls inside the image, 0 <= x1 <= W-1, 0 <= y1 <= H-1.

    Pixels that no layer covers (only when layers[0] has a shape) are black, with zero
    flow, ``valid`` False and ``inside`` False.
    """
    H, W = int(height), int(width)
    full = (0, H, 0, W)
    top0 = np.full((H, W), -1, np.int32)
    top1 = np.full((H, W), -1, np.int32)
    grid_x = np.arange(W, dtype=np.float32)
    grid_y = np.arange(H, dtype=np.float32)

    def grid(r):
        y0, y1, x0, x1 = r
        xx = np.broadcast_to(grid_x[None, x0:x1], (y1 - y0, x1 - x0)).ravel()
        yy = np.broadcast_to(grid_y[y0:y1, None], (y1 - y0, x1 - x0)).ravel()
        return xx, yy

    # where each layer can appear: img0 rect and img1 rect (its moved bounding box)
    # (and the unclipped img1 bounding box, for occlusion tests outside the frame)
    rects0, rects1, boxes1, inv = [], [], [], []
    for L in layers:
        inv.append(affine_inverse(L.motion))
        if L.shape is None:
            rects0.append(full)
            rects1.append(full)
            boxes1.append(None)
            continue
        c, R = np.asarray(L.shape.centre, np.float64), L.shape.radius() + 1.0
        corners = c + np.array([[-R, -R], [R, -R], [-R, R], [R, R]])
        rects0.append(_rect(corners, H, W))
        mx, my = _affine_apply(L.motion, corners[:, 0], corners[:, 1])
        rects1.append(_rect(np.stack([mx, my], 1), H, W))
        boxes1.append((mx.min() - 1, mx.max() + 1, my.min() - 1, my.max() + 1))

    warped = []
    for k, L in enumerate(layers):
        if rects0[k] is not None:
            y0, y1, x0, x1 = rects0[k]
            xx, yy = grid(rects0[k])
            top0[y0:y1, x0:x1][L.contains(xx, yy).reshape(y1 - y0, x1 - x0)] = k
        if rects1[k] is not None:
            y0, y1, x0, x1 = rects1[k]
            xx, yy = grid(rects1[k])
            xs, ys = _affine_apply(inv[k], xx, yy)
            m = L.contains(xs, ys).reshape(y1 - y0, x1 - x0)
            top1[y0:y1, x0:x1][m] = k
            warped.append((xs, ys))
        else:
            warped.append(None)

    col0 = np.zeros((3, H, W), np.float32)
    col1 = np.zeros((3, H, W), np.float32)
    flow = np.zeros((2, H, W), np.float32)
    valid = np.zeros((H, W), bool)
    inside = np.zeros((H, W), bool)
    for k, L in enumerate(layers):
        if rects1[k] is not None:
            y0, y1, x0, x1 = rects1[k]
            sel = (top1[y0:y1, x0:x1] == k).ravel()
            if sel.any():
                xs, ys = warped[k]
                c1 = col1[:, y0:y1, x0:x1].reshape(3, -1)  # a copy unless the rect is full
                c1[:, sel] = L.colour(xs[sel], ys[sel])
                col1[:, y0:y1, x0:x1] = c1.reshape(3, y1 - y0, x1 - x0)
        if rects0[k] is None:
            continue
        y0, y1, x0, x1 = rects0[k]
        sel2 = top0[y0:y1, x0:x1] == k
        sel = sel2.ravel()
        if not sel.any():
            continue
        xx, yy = grid(rects0[k])
        xq, yq = xx[sel], yy[sel]
        c0 = col0[:, y0:y1, x0:x1]
        c0[:, sel2] = L.colour(xq, yq)
        xq, yq = xq.astype(np.float64), yq.astype(np.float64)
        x1q, y1q = _affine_apply(L.motion, xq, yq)
        fl = flow[:, y0:y1, x0:x1]
        fl[0][sel2] = x1q - xq
        fl[1][sel2] = y1q - yq
        occ = np.zeros(len(xq), bool)
        for j in range(k + 1, len(layers)):
            if boxes1[j] is None:
                pre = np.arange(len(x1q))
            else:
                bx0, bx1, by0, by1 = boxes1[j]
                pre = np.nonzero((x1q >= bx0) & (x1q <= bx1) & (y1q >= by0) & (y1q <= by1))[0]
                if len(pre) == 0:
                    continue
            xs, ys = _affine_apply(inv[j], x1q[pre], y1q[pre])
            occ[pre] |= layers[j].contains(xs, ys)
        valid[y0:y1, x0:x1][sel2] = ~occ
        inside[y0:y1, x0:x1][sel2] = (x1q >= 0) & (x1q <= W - 1) & (y1q >= 0) & (y1q <= H - 1)

    def to8(c):
        return np.ascontiguousarray(
            (np.clip(c, 0, 1) * 255 + 0.5).astype(np.uint8).transpose(1, 2, 0))

    return {
        "img0": to8(col0),
        "img1": to8(col1),
        "flow": np.ascontiguousarray(flow.transpose(1, 2, 0)),
        "valid": valid,
        "inside": inside,
    }


def _random_tex_affine(rng, img, texels_per_px=(0.6, 1.6)):
    a = rng.uniform(0, 2 * math.pi)
    s = _loguniform(rng, *texels_per_px)
    c, si = math.cos(a) * s, math.sin(a) * s
    off = rng.uniform(0, 2 * max(img.planes.shape[1:]), 2)
    return np.array([[c, -si, off[0]], [si, c, off[1]]], np.float64)


def _random_shape(rng, H, W):
    cx = rng.uniform(-0.05, 1.05) * W
    cy = rng.uniform(-0.05, 1.05) * H
    r = rng.uniform(0.08, 0.3) * min(H, W)
    kind = ("ellipse", "polygon", "blob")[int(rng.integers(3))]
    ang = rng.uniform(0, math.pi)
    half = np.array([r, r * rng.uniform(0.35, 1.0)])
    if kind == "polygon":
        n = int(rng.integers(3, 9))
        th = np.sort(rng.uniform(0, 2 * math.pi, n))
        rad = r * rng.uniform(0.45, 1.0, n)
        verts = np.stack([cx + rad * np.cos(th), cy + rad * np.sin(th)], 1)
        return Shape("polygon", np.array([cx, cy]), verts=verts)
    if kind == "blob":
        m = int(rng.integers(2, 5))
        ks = rng.choice(np.arange(2, 7), m, replace=False).astype(np.float64)
        amps = rng.uniform(0.03, 0.45 / m, m)
        harm = np.stack([ks, amps, rng.uniform(0, 2 * math.pi, m)], 1)
        return Shape("blob", np.array([cx, cy]), half, ang, harm=harm)
    return Shape("ellipse", np.array([cx, cy]), half, ang)


def _frame_shape(rng, H, W):
    """A chair-like silhouette (:class:`Shape` kind ``"frame"``): a seat (a tilted
    quadrilateral), 2-4 legs below it and, mostly, a back of two posts with 1-3 rails or
    a solid panel; strokes 0.5-6 % of the image wide, so legs are a few pixels thin."""
    m = min(H, W)
    cx, cy = rng.uniform(-0.05, 1.05) * W, rng.uniform(-0.05, 1.05) * H
    s = rng.uniform(0.12, 0.35) * m  # seat width
    ang = rng.uniform(-0.5, 0.5)
    rot = np.array([[math.cos(ang), -math.sin(ang)], [math.sin(ang), math.cos(ang)]])
    depth = s * rng.uniform(0.15, 0.5)
    skew = s * rng.uniform(-0.3, 0.3)
    seat = np.array([[-s / 2, 0], [s / 2, 0], [s / 2 + skew, -depth], [-s / 2 + skew, -depth]])
    lw = max(0.8, rng.uniform(0.01, 0.04) * s * 2)  # stroke half width
    leg = s * rng.uniform(0.6, 1.3)
    strokes = []
    xs = (-s / 2 + lw, s / 2 - lw) + ((skew - s / 2 + lw, skew + s / 2 - lw) if rng.random() < 0.6 else ())
    for i, x in enumerate(xs):
        y0 = 0.0 if i < 2 else -depth
        splay = rng.uniform(-0.15, 0.15) * leg
        strokes.append([x, y0, x + splay, y0 + leg * (1 if i < 2 else rng.uniform(0.7, 0.95)), lw])
    if rng.random() < 0.8:  # a back
        bh = s * rng.uniform(0.6, 1.2)
        bx = (-s / 2 + skew + lw, s / 2 + skew - lw)
        lean = rng.uniform(-0.2, 0.2) * bh
        for x in bx:
            strokes.append([x, -depth, x + lean, -depth - bh, lw])
        if rng.random() < 0.3:
            seat_back = np.array([[bx[0], -depth - bh * 0.4], [bx[1], -depth - bh * 0.4],
                                  [bx[1] + lean, -depth - bh], [bx[0] + lean, -depth - bh]])
        else:
            seat_back = None
            for k in range(int(rng.integers(1, 4))):
                f = 1.0 - k * rng.uniform(0.2, 0.35)
                strokes.append([bx[0] + lean * f, -depth - bh * f, bx[1] + lean * f, -depth - bh * f,
                                lw * rng.uniform(0.8, 2.0)])
    else:
        seat_back = None
    st = np.asarray(strokes, np.float64)
    c = np.array([cx, cy])
    for a in (0, 2):
        st[:, a : a + 2] = st[:, a : a + 2] @ rot.T + c
    verts = seat @ rot.T + c
    if seat_back is not None:  # a solid back: a second polygon drawn as a thick stroke pair
        sb = seat_back @ rot.T + c
        st = np.concatenate([st, [[*(sb[0] + sb[1]) / 2, *(sb[2] + sb[3]) / 2,
                                   np.linalg.norm(sb[1] - sb[0]) / 2]]])
    return Shape("frame", c, verts=verts, strokes=st)


class TwoToneTexture:
    """Two textures on one surface, split by a straight cut or by parallel stripes in
    texture space (a chair's seat against its back, a painted band): strong colour edges
    that move with the surface, so that they are no motion edges. Samples like
    :class:`~pacup.train.textures.TexImage` (its ``planes`` are the first texture's)."""

    def __init__(self, a, b, origin, angle: float, period: float | None = None):
        self.a, self.b, self.planes = a, b, a.planes
        self.origin = np.asarray(origin, np.float64)
        self.normal = np.array([math.cos(angle), math.sin(angle)])
        self.period = period

    def side(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """True where texel (x, y) shows the second texture."""
        d = (x - self.origin[0]) * self.normal[0] + (y - self.origin[1]) * self.normal[1]
        if self.period is None:
            return d > 0
        return np.floor(d / self.period).astype(np.int64) % 2 == 1

    def sample(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        out = self.a.sample(x, y)
        m = self.side(x, y)
        if m.any():
            out[:, m] = self.b.sample(x[m], y[m])
        return out


def _two_tone(rng, tex, aff, centre, radius_px: float) -> TwoToneTexture:
    """``tex`` with a second random texture beyond a cut through a point near the layer's
    ``centre`` (pixels; mapped to texels by ``aff``), or in stripes 0.3-1 radius wide (40 %)."""
    other = T.random_texture(rng, photo_p=0.55)
    c = np.asarray(aff, np.float64) @ np.array([centre[0], centre[1], 1.0])
    r = radius_px * math.hypot(aff[0][0], aff[1][0])  # texels per pixel
    origin = c + rng.uniform(-0.5, 0.5, 2) * r
    period = r * rng.uniform(0.3, 1.0) if rng.random() < 0.4 else None
    return TwoToneTexture(tex, other, origin, rng.uniform(0, 2 * math.pi), period)


def make_flow_scene(seed: int, height: int, width: int, return_layers: bool = False,
                    frames: float = 0.0, two_tone: float = 0.0) -> dict:
    """A random FlyingChairs-style frame pair, deterministic in ``seed``.

    Returns ``img0``, ``img1`` (uint8 (H, W, 3)), ``flow`` (float32 (H, W, 2), u right,
    v down, pixels, img0 -> img1), ``valid`` (bool: not occluded in img1) and ``inside``
    (bool: lands inside img1); see :func:`render_flow_layers`. Each layer translates by
    up to +-20 px (scaled by min(H, W)/256), rotates by up to 3 deg (background) or
    12 deg (objects) and scales by 0.93-1.07. ``frames``: probability that an object is a
    chair-like frame (:func:`_frame_shape`: thin legs and rails, the background showing
    through) instead of a compact shape; drawn from a stream of their own, so the rest of
    the scene is the same either way. ``two_tone``: probability that a layer (background
    included) is painted in two textures split by a cut or stripes (:class:`TwoToneTexture`:
    colour edges with no motion edge), from a stream of its own too: the flow is the same.
    """
    rng = np.random.default_rng(seed)
    H, W = int(height), int(width)
    sc = min(H, W) / 256.0
    tmax = 20.0 * sc
    layers = []
    bg = T.random_texture(rng, photo_p=0.55)
    bg_aff = _random_tex_affine(rng, bg)
    trng = np.random.default_rng([seed, 8]) if two_tone > 0 else None

    def paint(tex, aff, centre, radius):
        if trng is not None and trng.random() < two_tone:
            return _two_tone(trng, tex, aff, centre, radius)
        return tex

    layers.append(FlowLayer(
        paint(bg, bg_aff, (W / 2, H / 2), 0.3 * min(H, W)), bg_aff,
        affine_about((W / 2, H / 2), math.radians(rng.uniform(-3, 3)), rng.uniform(0.96, 1.04),
                     rng.uniform(-tmax, tmax, 2)),
        None))
    frng = np.random.default_rng([seed, 5]) if frames > 0 else None
    for _ in range(int(rng.integers(2, 7))):
        shape = _random_shape(rng, H, W)
        if frng is not None and frng.random() < frames:
            shape = _frame_shape(frng, H, W)
        if rng.random() < 0.15:  # hard case: object wearing the background's texture
            img, aff = bg, _random_tex_affine(rng, bg)
        else:
            img = T.random_texture(rng, photo_p=0.55)
            aff = _random_tex_affine(rng, img)
        mot = affine_about(shape.centre, math.radians(rng.uniform(-12, 12)),
                           rng.uniform(0.93, 1.07), rng.uniform(-tmax, tmax, 2))
        layers.append(FlowLayer(paint(img, aff, shape.centre, 0.15 * min(H, W)), aff, mot, shape))
    out = render_flow_layers(layers, H, W)
    if return_layers:
        out["layers"] = layers
    return out


# ============================================================================ datasets


def item_seed(seed: int, index: int) -> int:
    """Scene seed of dataset item ``index``: a hash of (seed, index), never colliding
    between neighbouring datasets the way ``seed + index`` would."""
    return int(np.random.SeedSequence([int(seed), int(index)]).generate_state(1, np.uint32)[0])


def _to_t(a: np.ndarray):
    import torch

    a = np.ascontiguousarray(a, dtype=np.float32)
    if a.ndim == 2:
        a = a[None]
    else:
        a = a.transpose(2, 0, 1)
    return torch.from_numpy(np.ascontiguousarray(a))


try:  # keep the module importable (e.g. for numpy-only tools) without torch
    from torch.utils.data import Dataset as _TorchDataset
except ImportError:  # pragma: no cover
    _TorchDataset = object


def stereo_occlusion(depth: np.ndarray, max_disparity: float, right_view: bool = False) -> np.ndarray:
    """Pixels of ``depth`` that a second camera beside this one cannot see (bool, HxW).

    Disparity is ``d = max_disparity * min(depth) / depth`` (the nearest point has
    ``max_disparity`` px). For a second camera to the right (``right_view=False``), pixel x
    lands at ``x - d(x)`` there; it is occluded when some pixel x2 > x lands at or left of
    that spot (a nearer surface covers it). These are the bands without ground truth that
    stereo (and, alike, structured-light and ToF sensors with an offset emitter) leave on
    one side of every depth edge, as in the Middlebury and Kinect data.
    """
    z = np.asarray(depth, np.float64)
    if right_view:
        return stereo_occlusion(z[:, ::-1], max_disparity)[:, ::-1]
    d = max_disparity * float(np.min(z)) / z
    r = np.arange(z.shape[1])[None, :] - d
    # min over x2 > x of r(x2): reversed cumulative minimum, shifted by one column
    after = np.minimum.accumulate(r[:, ::-1], axis=1)[:, ::-1]
    after = np.concatenate([after[:, 1:], np.full((z.shape[0], 1), np.inf)], axis=1)
    return r >= after


GUIDE_BLUR_MAX = 4.0


def camera_blur(rgb: np.ndarray, sigma: float) -> np.ndarray:
    """A uint8 (H, W, 3) render as a camera would record it: every pixel convolved with a
    Gaussian point-spread function of ``sigma`` px (Pillow's ``GaussianBlur``; the edges
    repeat).

    The renderers here sample one ray per pixel, so an object's outline is a one-pixel
    step: the luminance step across a motion / depth boundary falls to 13-26 % of its
    value one pixel to either side. Real guides spread it: measured with that profile
    (one pixel to either side, relative to the boundary pair itself), 0.47-0.49 on the
    FlyingChairs dev pairs and 0.68-0.69 on the Middlebury motorcycle, which synthetic
    scenes match at sigma = 0.8 (flow) and 1.0 (depth). Unlike :func:`augment_guide`
    this changes nothing but the sharpness."""
    if sigma <= 0:
        return rgb
    img = Image.fromarray(np.ascontiguousarray(rgb)).filter(ImageFilter.GaussianBlur(float(sigma)))
    return np.asarray(img)


GUIDE_CONTRAST_MAX = 4.0


def stretch_contrast(rgb: np.ndarray, factor: float) -> np.ndarray:
    """A uint8 (H, W, 3) render with its contrast multiplied by ``factor``: every value's
    deviation from the image's mean level (one level over all pixels and channels, so grey
    stays grey) scaled, clipped to [0, 255] as an exposed sensor clips.

    The synthetic flow scenes are lower in contrast than real guides: the median luminance
    gradient (central differences, [0, 1] RGB) on the ground truth's motion boundaries is
    0.086 in 24 synthetic flow scenes against 0.153 on the FlyingChairs dev pairs, and
    0.010 against 0.015 more than 2 px from them (``benchmarks/edge_profile.py``; a factor
    of 2 gives 0.154 and 0.017). A PAC kernel compares guidance features by their distance,
    so contrast is not neutral to it: flattening the FlyingChairs guides to 0.2-0.4 of their
    contrast improves the guided flow x4 networks trained without this stretch, and
    training with it (``guide_contrast``) makes them far less sensitive to it (the model
    card)."""
    if factor == 1:
        return rgb
    a = np.asarray(rgb, np.float32)
    m = np.float32(a.mean())
    return (np.clip(m + np.float32(factor) * (a - m), 0, 255) + 0.5).astype(np.uint8)


def augment_guide(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A camera's version of a rendered uint8 (H, W, 3) frame, for domain randomisation:
    optical blur (Gaussian, sigma 0.3-1.2 px, 70 %), per-channel gain (0.8-1.2) and gamma
    (0.7-1.4), sensor noise (sigma up to 3 %) and, 30 % of the time, JPEG compression
    (quality 40-95). Rendered edges are exact one-pixel steps with clean colours; real
    guides never are, and a guidance branch trained on the former alone learns to trust
    edges that real images do not have."""
    import io

    img = Image.fromarray(np.ascontiguousarray(rgb))
    if rng.random() < 0.7:
        img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.2)))
    a = np.asarray(img, np.float32) / 255.0
    a = np.clip(a * rng.uniform(0.8, 1.2, 3).astype(np.float32), 0, 1) ** np.float32(rng.uniform(0.7, 1.4))
    a = a + rng.standard_normal(a.shape, dtype=np.float32) * np.float32(rng.uniform(0, 0.03))
    out = (np.clip(a, 0, 1) * 255 + 0.5).astype(np.uint8)
    if rng.random() < 0.3:
        buf = io.BytesIO()
        Image.fromarray(out).save(buf, format="JPEG", quality=int(rng.integers(40, 96)))
        out = np.asarray(Image.open(buf).convert("RGB"))
    return out


class _SynthBase(_TorchDataset):
    def __init__(self, factor: int, crop: int = 128, method: str = "bicubic",
                 length: int = 10000, seed: int = 0, noise_std: float = 0.0,
                 holes: float = 0.0, oversize: float = 1.0, guide_aug: float = 0.0, guide_blur: float = 0.0,
                 guide_contrast: float = 1.0):
        factor = int(factor)
        if factor < 1:
            raise ValueError("factor must be >= 1")
        if crop < factor:
            raise ValueError("crop must be at least the factor")
        self.factor = factor
        self.crop = (int(crop) // factor) * factor  # full-res crop, a multiple of factor
        self.method = method
        self.length = int(length)
        self.seed = int(seed)
        self.noise_std = float(noise_std)
        self.holes = float(holes)
        self.gen = max(self.crop, int(round(self.crop * oversize)))
        if not 0.0 <= guide_aug <= 1.0:
            raise ValueError(f"guide_aug must be a probability in [0, 1], got {guide_aug!r}")
        self.guide_aug = float(guide_aug)
        if not 0.0 <= guide_blur <= GUIDE_BLUR_MAX:
            raise ValueError(f"guide_blur must be a sigma in [0, {GUIDE_BLUR_MAX}] px, got {guide_blur!r}")
        self.guide_blur = float(guide_blur)
        if not 1.0 <= guide_contrast <= GUIDE_CONTRAST_MAX:
            raise ValueError(f"guide_contrast must be a factor in [1, {GUIDE_CONTRAST_MAX}], got {guide_contrast!r}")
        self.guide_contrast = float(guide_contrast)
        degrade(np.ones((factor, factor), np.float32), factor, method)  # validates method

    def _guide(self, rgb: np.ndarray, s: int):
        """The item's guide tensor: its contrast multiplied by a factor drawn log-uniformly
        from [1, ``guide_contrast``] (:func:`stretch_contrast`), blurred by a camera's
        point-spread function when ``guide_blur`` > 0 (:func:`camera_blur`), then augmented
        (:func:`augment_guide`) with probability ``guide_aug``; each from a stream of its own."""
        if self.guide_contrast > 1:
            rng = np.random.default_rng([s, 7])
            rgb = stretch_contrast(rgb, _loguniform(rng, 1.0, self.guide_contrast))
        if self.guide_blur > 0:
            rgb = camera_blur(rgb, np.random.default_rng([s, 6]).uniform(self.guide_blur / 3, self.guide_blur))
        if self.guide_aug > 0:
            rng = np.random.default_rng([s, 4])
            if rng.random() < self.guide_aug:
                rgb = augment_guide(rgb, rng)
        return _to_t(rgb.astype(np.float32) / 255.0)

    def __len__(self):
        return self.length

    def _crop_window(self, rng):
        y0 = int(rng.integers(0, self.gen - self.crop + 1))
        x0 = int(rng.integers(0, self.gen - self.crop + 1))
        return slice(y0, y0 + self.crop), slice(x0, x0 + self.crop)


MISALIGN_MAX_PX = 4
TEXTURE_GAIN_MAX = 16.0


def shift_image(img: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """``img`` moved by (dy, dx) whole pixels (content goes down / right for positive
    values), the same size, the uncovered border filled by repeating the edge."""
    dy, dx = int(dy), int(dx)
    h, w = img.shape[:2]
    m = max(abs(dy), abs(dx))
    if m == 0:
        return img
    pad = ((m, m), (m, m)) + ((0, 0),) * (img.ndim - 2)
    big = np.pad(img, pad, mode="edge")
    return big[m - dy:m - dy + h, m - dx:m - dx + w]


class SyntheticDepthDataset(_SynthBase):
    """Random RGB-D crops for guided depth upsampling; item i depends only on (seed, i).

    A square scene of ``round(oversize * crop)`` pixels is rendered and a random
    ``crop`` x ``crop`` window (``crop`` rounded down to a multiple of ``factor``) is cut
    from it. ``oversize`` defaults to 1 (render exactly the crop): scenes are random
    anyway, and rendering cost grows with the square of ``oversize`` (about 12 ms at
    256 px, 50 ms at 384 px on one core); 1.5 gives off-centre principal points. Items:

    * ``guide`` (3, H, W) RGB in [0, 1]
    * ``low`` (1, H/f, W/f) metres, from :func:`pacup.train.degrade.degrade` with
      ``method``, ``noise_std`` (relative) and ``holes``; 0 where invalid
    * ``low_valid`` (1, H/f, W/f) 0/1
    * ``target`` (1, H, W) metres, ``target_valid`` (1, H, W) 0/1: all ones, except that
      with probability ``occlusion`` an item loses the pixels a second camera could not see
      (:func:`stereo_occlusion`, nearest disparity 2-10 % of the crop width, camera left or
      right): that ground truth is invalid and never enters the low-res input, as with
      real stereo / RGB-D ground truth.

    With probability ``misalign`` an item's guide is shifted against its depth by a whole
    number of pixels, up to ``MISALIGN_MAX_PX`` in x and y (edge pixels repeated), as when
    a sensor's depth is registered to the colour camera imperfectly or a frame later.

    ``texture_gain`` > 1: each scene is rendered with its surfaces' texture contrast
    multiplied by a factor drawn log-uniformly from [1, ``texture_gain``] (a stream of its
    own; see :func:`render_depth_scene`). The synthetic depth guides' texture is faint
    against their boundaries compared with real ones (the model card), and a guided network
    that rarely sees strong colour edges without a depth edge learns to copy them.
    """

    def __init__(self, factor: int, crop: int = 128, method: str = "bicubic", occlusion: float = 0.0,
                 disparity: float = 0.0, clutter: float = 0.0, misalign: float = 0.0, texture_gain: float = 1.0,
                 **kw):
        super().__init__(factor, crop, method, **kw)
        if not 1.0 <= texture_gain <= TEXTURE_GAIN_MAX:
            raise ValueError(f"texture_gain must be a factor in [1, {TEXTURE_GAIN_MAX}], got {texture_gain!r}")
        self.texture_gain = float(texture_gain)
        for name, p in (("occlusion", occlusion), ("disparity", disparity), ("clutter", clutter),
                        ("misalign", misalign)):
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"{name} must be a probability in [0, 1], got {p!r}")
        self.occlusion = float(occlusion)
        self.disparity = float(disparity)
        self.clutter = float(clutter)
        self.misalign = float(misalign)

    def __getitem__(self, index):
        if not 0 <= index < self.length:
            raise IndexError(index)
        s = item_seed(self.seed, index)
        gain = 1.0
        if self.texture_gain > 1:
            gain = _loguniform(np.random.default_rng([s, 9]), 1.0, self.texture_gain)
        scene = make_depth_scene(s, self.gen, self.gen, clutter=self.clutter, texture_gain=gain)
        rng = np.random.default_rng([s, 1])
        ys, xs = self._crop_window(rng)
        rgb = scene["rgb"][ys, xs]
        depth = scene["depth"][ys, xs]
        tv = np.isfinite(depth) & (depth > 0)
        deg_seed = int(rng.integers(2**31))
        if self.occlusion > 0:
            # Drawn from a stream of their own, so items without occlusion stay as they were.
            orng = np.random.default_rng([s, 2])
            if orng.random() < self.occlusion:
                max_d = self.crop * orng.uniform(0.02, 0.10)
                tv &= ~stereo_occlusion(np.where(tv, depth, np.inf), max_d, right_view=bool(orng.random() < 0.5))
        if self.disparity > 0 and np.random.default_rng([s, 3]).random() < self.disparity:
            # Stereo and many networks give disparity (inverse depth): planes are then affine
            # in the image and edges have other profiles; the scale is irrelevant after the
            # per-image normalisation.
            depth = (1.0 / depth).astype(np.float32)
        low, lv = degrade(depth, self.factor, self.method, valid=tv, noise_std=self.noise_std,
                          holes=self.holes, seed=deg_seed)
        if self.misalign > 0:
            # Stream 10, not 5: make_depth_scene draws clutter from [s, 5], and sharing it made
            # the misaligned items exactly the cluttered ones (when misalign <= clutter).
            mrng = np.random.default_rng([s, 10])
            if mrng.random() < self.misalign:
                rgb = shift_image(rgb, *mrng.integers(-MISALIGN_MAX_PX, MISALIGN_MAX_PX + 1, size=2))
        return {
            "guide": self._guide(rgb, s),
            "low": _to_t(low),
            "low_valid": _to_t(lv),
            "target": _to_t(np.where(tv, depth, 0)),
            "target_valid": _to_t(tv),
        }


class SyntheticFlowDataset(_SynthBase):
    """Random flow crops for guided flow upsampling; item i depends only on (seed, i).

    * ``guide`` (3, H, W): img0 in [0, 1]
    * ``low`` (2, H/f, W/f): flow in LOW-RES pixels (vectors divided by ``factor``)
    * ``low_valid`` (1, H/f, W/f)
    * ``target`` (2, H, W): flow in full-res pixels; ``target_valid`` (1, H, W): all ones
      (the synthetic flow is exact everywhere, occluded pixels included)
    * ``target_noc`` (1, H, W): 1 where the pixel is not occluded in img1 (for
      non-occluded metrics); see :func:`render_flow_layers`.
    """

    def __init__(self, factor: int, crop: int = 128, method: str = "bilinear_aa", frames: float = 0.0,
                 two_tone: float = 0.0, **kw):
        super().__init__(factor, crop, method, **kw)
        for name, v in (("frames", frames), ("two_tone", two_tone)):
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"{name} must be a probability in [0, 1], got {v!r}")
        self.frames = float(frames)
        self.two_tone = float(two_tone)

    def __getitem__(self, index):
        if not 0 <= index < self.length:
            raise IndexError(index)
        s = item_seed(self.seed, index)
        scene = make_flow_scene(s, self.gen, self.gen, frames=self.frames, two_tone=self.two_tone)
        rng = np.random.default_rng([s, 1])
        ys, xs = self._crop_window(rng)
        flow = scene["flow"][ys, xs]
        tv = np.ones(flow.shape[:2], bool)
        low, lv = degrade(flow, self.factor, self.method, valid=tv, noise_std=self.noise_std,
                          holes=self.holes, seed=int(rng.integers(2**31)), flow=True)
        return {
            "guide": self._guide(scene["img0"][ys, xs], s),
            "low": _to_t(low),
            "low_valid": _to_t(lv),
            "target": _to_t(flow),
            "target_valid": _to_t(tv),
            "target_noc": _to_t(scene["valid"][ys, xs]),
        }


__all__ = [
    "augment_guide", "camera_blur", "GUIDE_BLUR_MAX", "stretch_contrast", "GUIDE_CONTRAST_MAX", "TEXTURE_GAIN_MAX", "stereo_occlusion",
    "make_depth_scene", "make_flow_scene", "render_depth_scene", "render_flow_layers",
    "DepthScene", "Tex", "Decal", "Room", "Box", "Sphere", "Cylinder", "Shape", "FlowLayer",
    "affine_about", "affine_inverse", "camera_rays", "item_seed",
    "SyntheticDepthDataset", "SyntheticFlowDataset", "crop_to_multiple",
]
