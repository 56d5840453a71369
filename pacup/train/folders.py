"""Evaluation and training data from folders: RGB + ground-truth pairs, and a synthetic split.

A :class:`Sample` is one full-resolution frame: guide RGB, ground truth (depth, disparity
or flow), its validity and what the units are. Everything that evaluates or trains on real
data takes a list of samples.

Folder layouts understood by :func:`load_pairs` (pairs are matched by file stem):

- two sub-folders, one for the guides (``rgb``, ``color``, ``colour``, ``image(s)``,
  ``img``, ``left``, ``guide``) and one for the ground truth (``depth``, ``disp``,
  ``disparity``, ``gt``, ``flow``, ``groundtruth``): ``rgb/0001.jpg`` + ``depth/0001.png``;
- one folder whose file stems end in a role word after ``_``, ``-`` or ``.``:
  ``0001_color.png`` + ``0001_depth.png``, ``0000000-img0.png`` + ``0000000-gt.flo``
  (FlyingChairs), ``motorcycle_left.png`` + ``motorcycle_disp.npz`` (scikit-image's
  Middlebury files). Other frames (``img1``, ``right``) are ignored.

Ground truth in any format of :mod:`pacup.io` (depth: PNG, npy, PFM, TIFF; flow: ``.flo``,
KITTI PNG, PFM, npy) plus ``.npz`` (the first array, or the one named ``disparity``,
``depth``, ``flow`` or ``arr_0``): the Middlebury motorcycle adapter. A file whose role word
is ``disp``/``disparity`` is disparity: larger is nearer, ``inf``/0 = unknown.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..io import SUPPORTED_DEPTH, SUPPORTED_FLOW, read_depth, read_flow, read_guide

__all__ = [
    "Sample", "load_pairs", "motorcycle", "tum_frame", "flyingchairs", "synthetic_split", "load_dataset",
    "MOTORCYCLE_BASELINE_FOCAL", "MOTORCYCLE_DOFFS", "EVAL_SEED",
]

GUIDE_WORDS = ("rgb", "color", "colour", "image", "images", "img", "img0", "im0", "left", "guide")
GT_WORDS = ("depth", "disp", "disparity", "gt", "groundtruth", "flow", "z")
IGNORE_WORDS = ("img1", "im1", "right", "img2")
DISPARITY_WORDS = ("disp", "disparity")
IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm")

# Middlebury 2014 "Motorcycle" at 1/4 scale (shared/data/README.md): depth in mm =
# baseline * focal / (disparity + doffs).
MOTORCYCLE_BASELINE_FOCAL = 193.001 * 994.978
MOTORCYCLE_DOFFS = 31.086

# The synthetic evaluation split: items item_seed(EVAL_SEED, i); training uses other seeds
# (item_seed hashes (seed, i), so splits never share a scene).
EVAL_SEED = 20240601


@dataclass
class Sample:
    """One full-resolution evaluation frame.

    Attributes:
        name: identifier (file stem or ``synthetic-depth-0003``).
        kind: ``'depth'`` (depth or disparity map) or ``'flow'``.
        guide: (H, W, 3) uint8 RGB.
        gt: (H, W) float32 depth/disparity or (H, W, 2) flow in px; 0 where invalid.
        valid: (H, W) bool, usable ground truth.
        units: ``'m'``, ``'mm'``, ``'disparity_px'``, ``'px'`` (flow) or ``'stored'``
            (a PNG read without a depth scale: the stored integers).
        noc: (H, W) bool, non-occluded pixels (flow; None when unknown).
        edge_depth: (H, W) map on which depth discontinuities are found, when ``gt`` is not
            itself a depth (disparity); None = ``gt``.
    """

    name: str
    kind: str
    guide: np.ndarray
    gt: np.ndarray
    valid: np.ndarray
    units: str
    noc: np.ndarray | None = None
    edge_depth: np.ndarray | None = None
    meta: dict = field(default_factory=dict)

    @property
    def is_disparity(self) -> bool:
        return self.units == "disparity_px"


def _split_role(stem: str):
    """(base, role word) for stems like ``0001_depth``; role None when there is none."""
    m = re.match(r"^(.*?)[_\-.]([A-Za-z0-9]+)$", stem)
    if m:
        word = m.group(2).lower()
        if word in GUIDE_WORDS or word in GT_WORDS or word in IGNORE_WORDS:
            return m.group(1), word
    low = stem.lower()
    if low in GUIDE_WORDS or low in GT_WORDS or low in IGNORE_WORDS:
        return "", low
    return stem, None


def _read_npz(path: Path) -> np.ndarray:
    with np.load(path) as z:
        keys = list(z.keys())
        if not keys:
            raise ValueError(f"{path}: empty .npz")
        for k in ("disparity", "depth", "flow", "arr_0"):
            if k in z:
                return np.asarray(z[k])
        return np.asarray(z[keys[0]])


def _read_gt(path: Path, kind: str, depth_scale: float | None, disparity: bool):
    ext = path.suffix.lower()
    if kind == "flow":
        if ext == ".npz":
            a = _read_npz(path).astype(np.float32)
            v = np.isfinite(a).all(axis=2) & (np.abs(np.nan_to_num(a)) <= 1e9).all(axis=2)
            return np.where(v[..., None], a, 0).astype(np.float32), v
        return read_flow(path)
    if ext == ".npz":
        a = _read_npz(path).astype(np.float64)
        if a.ndim != 2:
            raise ValueError(f"{path}: expected a 2-D depth/disparity array, got shape {a.shape}")
        with np.errstate(invalid="ignore"):
            v = np.isfinite(a) & (a > 0)
        if depth_scale:
            a = a / depth_scale
        return np.where(v, a, 0).astype(np.float32), v
    return read_depth(path, depth_scale)


def _guess_units(kind, disparity, depth_scale, units):
    if units is not None:
        return units
    if kind == "flow":
        return "px"
    if disparity:
        return "disparity_px"
    return "m" if depth_scale else "stored"


def load_pairs(folder, kind: str = "depth", depth_scale: float | None = None, units: str | None = None,
               disparity: bool | None = None) -> list[Sample]:
    """Pairs of RGB guide + ground truth in ``folder`` (layouts: module docstring).

    Args:
        folder: the folder.
        kind: ``'depth'`` or ``'flow'``.
        depth_scale: stored units per metre for depth files (NYU/TUM PNG: 1000 or 5000);
            None keeps stored values (units ``'stored'``) unless ``units`` says otherwise.
        units: override the units recorded in the samples (e.g. ``'mm'``).
        disparity: force (True/False) the disparity interpretation; by default a ground
            truth file whose role word is ``disp``/``disparity`` is disparity.

    Returns:
        Samples sorted by name.

    Raises:
        ValueError: no pair found, unknown kind, or a guide whose size differs from its
            ground truth.
    """
    if kind not in ("depth", "flow"):
        raise ValueError(f"kind must be 'depth' or 'flow', got {kind!r}")
    root = Path(folder)
    if not root.is_dir():
        raise ValueError(f"{root}: not a folder")
    gt_exts = (SUPPORTED_FLOW if kind == "flow" else SUPPORTED_DEPTH) + (".npz",)
    guides: dict[str, Path] = {}
    gts: dict[str, tuple[Path, bool]] = {}
    subs = {p.name.lower(): p for p in root.iterdir() if p.is_dir()}
    gsub = next((subs[w] for w in GUIDE_WORDS if w in subs), None)
    tsub = next((subs[w] for w in GT_WORDS if w in subs), None)
    if gsub is not None and tsub is not None:
        is_disp = tsub.name.lower() in DISPARITY_WORDS
        for p in sorted(gsub.iterdir()):
            if p.is_file() and p.suffix.lower() in IMAGE_EXTS:
                guides[p.stem] = p
        for p in sorted(tsub.iterdir()):
            if p.is_file() and p.suffix.lower() in gt_exts:
                gts[p.stem] = (p, is_disp)
    else:
        for p in sorted(root.iterdir()):
            if not p.is_file():
                continue
            base, role = _split_role(p.stem)
            ext = p.suffix.lower()
            if role in IGNORE_WORDS:
                continue
            if role in GUIDE_WORDS and ext in IMAGE_EXTS:
                guides[base] = p
            elif role in GT_WORDS and ext in gt_exts:
                gts[base] = (p, role in DISPARITY_WORDS)
    names = sorted(set(guides) & set(gts))
    if not names:
        raise ValueError(f"{root}: no RGB + {kind} ground-truth pairs found (see pacup.train.folders for the "
                         f"layouts); guides: {sorted(guides)[:5]}, ground truth: {sorted(gts)[:5]}")
    out = []
    for n in names:
        gpath, (tpath, is_disp) = guides[n], gts[n]
        disp = is_disp if disparity is None else bool(disparity)
        gt, valid = _read_gt(tpath, kind, depth_scale, disp)
        guide = read_guide(gpath)
        if guide.shape[:2] != gt.shape[:2]:
            raise ValueError(f"{gpath.name} is {guide.shape[:2]} but {tpath.name} is {gt.shape[:2]}")
        out.append(Sample(name=n or tpath.stem, kind=kind, guide=guide, gt=gt.astype(np.float32),
                          valid=np.asarray(valid, bool), units=_guess_units(kind, disp, depth_scale, units),
                          meta={"guide": str(gpath), "gt": str(tpath)}))
    return out


def motorcycle(folder) -> list[Sample]:
    """The Middlebury 2014 motorcycle (1/4 scale) dev sample: disparity in px (``inf`` =
    unknown), with the depth in mm (``baseline*focal / (d + doffs)``) kept for finding
    depth edges."""
    [s] = load_pairs(folder, "depth", disparity=True)
    d = s.gt.astype(np.float64)
    s.edge_depth = np.where(s.valid, MOTORCYCLE_BASELINE_FOCAL / (d + MOTORCYCLE_DOFFS), 0).astype(np.float32)
    s.name = "motorcycle"
    return [s]


def tum_frame(folder) -> list[Sample]:
    """The TUM RGB-D frame: 16-bit PNG, metres = value / 5000, 0 = invalid."""
    return load_pairs(folder, "depth", depth_scale=5000.0, units="m")


def flyingchairs(folder) -> list[Sample]:
    """FlyingChairs pairs ``NNNNNNN-img0.png`` + ``NNNNNNN-gt.flo`` (img1 ignored)."""
    return load_pairs(folder, "flow")


def synthetic_split(kind: str = "depth", n: int = 16, size: int = 256, seed: int = EVAL_SEED) -> list[Sample]:
    """A fixed synthetic evaluation set (:mod:`pacup.train.synth`): ``n`` frames of
    ``size`` x ``size``, scene i from ``item_seed(seed, i)``. Depth in metres; flow with
    its non-occlusion mask."""
    from .synth import item_seed, make_depth_scene, make_flow_scene

    out = []
    for i in range(int(n)):
        s = item_seed(seed, i)
        if kind == "depth":
            sc = make_depth_scene(s, size, size)
            d = sc["depth"].astype(np.float32)
            v = np.isfinite(d) & (d > 0)
            out.append(Sample(f"synthetic-depth-{i:04d}", "depth", sc["rgb"], np.where(v, d, 0), v, "m"))
        elif kind == "flow":
            sc = make_flow_scene(s, size, size)
            fl = sc["flow"].astype(np.float32)
            v = np.isfinite(fl).all(axis=2)
            out.append(Sample(f"synthetic-flow-{i:04d}", "flow", sc["img0"], fl, v, "px", noc=sc["valid"]))
        else:
            raise ValueError(f"kind must be 'depth' or 'flow', got {kind!r}")
    return out


def load_dataset(spec: str, kind: str | None = None, depth_scale: float | None = None, n: int = 16,
                 size: int = 256) -> list[Sample]:
    """Samples from a short spec:

    - ``synthetic`` / ``synthetic-depth`` / ``synthetic-flow`` (``kind`` picks for the
      first): :func:`synthetic_split` with ``n`` and ``size``;
    - a folder: the motorcycle adapter when it holds ``*_disp.npz``; the TUM adapter when it
      holds ``*_depth.png`` and ``*_color.png`` and no ``depth_scale`` is given (5000);
      otherwise :func:`load_pairs` (``kind`` defaults to flow when the folder holds ``.flo``
      files, else depth).
    """
    if spec.startswith("synthetic"):
        k = spec.split("-", 1)[1] if "-" in spec else (kind or "depth")
        return synthetic_split(k, n=n, size=size)
    root = Path(spec)
    if not root.is_dir():
        raise ValueError(f"{spec}: not a folder, and not 'synthetic[-depth|-flow]'")
    files = [p.name.lower() for p in root.iterdir()]
    if kind is None:
        kind = "flow" if any(f.endswith(".flo") for f in files) else "depth"
    if kind == "depth" and any(f.endswith("_disp.npz") for f in files):
        return motorcycle(root)
    if kind == "depth" and depth_scale is None and any(f.endswith("_depth.png") for f in files) \
            and any(f.endswith("_color.png") for f in files) and any(f.startswith("tum") for f in files):
        return tum_frame(root)
    return load_pairs(root, kind, depth_scale=depth_scale, units="m" if depth_scale else None)
