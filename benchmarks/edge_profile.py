"""How sharp a guide's edges are where the ground truth has its boundaries.

For each horizontal pixel pair across a ground-truth boundary (flow: the vectors differ by
more than ``--jump`` px; depth: the values by more than ``--rel`` relative), the guide's
luminance step across the pairs 1 and 2 px to either side, relative to the step across the
boundary pair itself, averaged over the images. A one-pixel step (a point-sampled render)
gives values near 0, a camera's blurred edge larger ones. Works on a folder dataset or on
the synthetic scenes (``--data synthetic-flow`` / ``synthetic-depth``), optionally blurred
as ``pacup train --guide-blur`` does (``--blur SIGMA``, :func:`pacup.train.synth.camera_blur`).

A second line gives the guide's contrast there: the median luminance gradient magnitude
(central differences, [0, 1] RGB) on the pixels of the boundary pairs, and on the pixels
more than 2 px from any of them (texture and flat areas), and the share of the latter
above 0.05 (strong colour edges with no boundary: a median misses them where most of an
image is flat). ``--contrast F`` first scales every guide's contrast by F as ``pacup train
--guide-contrast`` does (:func:`pacup.train.synth.stretch_contrast`); ``--texture-gain G``
renders the synthetic depth scenes with their textures strengthened by G, the largest
factor of ``pacup train --texture-gain``. Prints two lines; asserts nothing.

    python benchmarks/edge_profile.py --data ../shared/data/flow/flyingchairs9 --task flow
    python benchmarks/edge_profile.py --data synthetic-flow --task flow --blur 0.8
    python benchmarks/edge_profile.py --data synthetic-depth --task depth --n 5 --size 500,740
    python benchmarks/edge_profile.py --data synthetic-flow --task flow --n 24 --contrast 2
    python benchmarks/edge_profile.py --data synthetic-depth --task depth --n 12 --size 500,740 --texture-gain 4
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from flow_bands import luminance  # noqa: E402
from hole_error import hole_distance  # noqa: E402


def boundary_pairs(gt: np.ndarray, valid: np.ndarray, task: str, jump: float = 1.0, rel: float | None = None):
    """(H, W-1) bool: horizontal pairs (x, x+1) across a ground-truth boundary, both valid.
    Depth uses ``pacup eval``'s discontinuity rule (:func:`pacup.train.evaluate.depth_edge_mask`:
    ``|a - b| > rel * min(a, b)``, ``rel`` by default its ``EDGE_RELATIVE_JUMP``), per pair."""
    from pacup.train.evaluate import EDGE_RELATIVE_JUMP

    a, b = gt[:, 1:], gt[:, :-1]
    both = valid[:, 1:] & valid[:, :-1]
    if task == "flow":
        return both & (np.linalg.norm(a - b, axis=2) > jump)
    rel = EDGE_RELATIVE_JUMP if rel is None else rel
    with np.errstate(invalid="ignore"):
        return both & (np.abs(a - b) > rel * np.minimum(a, b))


def profile(guide: np.ndarray, pairs: np.ndarray, offsets=(-2, -1, 0, 1, 2)) -> np.ndarray:
    """Mean luminance step of the pairs ``offset`` px right of each boundary pair (negative:
    left), relative to offset 0."""
    y = luminance(guide)
    step = np.abs(y[:, 1:] - y[:, :-1])
    vals = np.array([np.roll(step, -o, axis=1)[pairs].mean() for o in offsets])
    return vals / vals[list(offsets).index(0)]


STRONG = 0.05  # a "strong" colour edge: luminance gradient magnitude in [0, 1] units


def contrast(guide: np.ndarray, pairs: np.ndarray, radius: int = 2) -> tuple[float, float, float]:
    """Median luminance gradient magnitude on the pixels of the boundary ``pairs`` and on
    the pixels farther than ``radius`` px (Chebyshev) from all of them, and the share of the
    latter whose gradient exceeds ``STRONG`` (strong colour edges that are no boundary)."""
    gy, gx = np.gradient(luminance(guide))
    mag = np.hypot(gx, gy)
    on = np.zeros(mag.shape, bool)
    on[:, 1:] |= pairs
    on[:, :-1] |= pairs
    away = hole_distance(~on, radius) > radius
    return float(np.median(mag[on])), float(np.median(mag[away])), float((mag[away] > STRONG).mean())


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="a folder dataset, synthetic-flow or synthetic-depth")
    ap.add_argument("--task", choices=["depth", "flow"], required=True)
    ap.add_argument("--blur", type=float, default=0.0, help="blur the guides first (sigma, px)")
    ap.add_argument("--contrast", type=float, default=1.0, help="stretch the guides' contrast first (factor)")
    ap.add_argument("--texture-gain", type=float, default=1.0,
                    help="synthetic depth scenes: render with this texture gain (as pacup train --texture-gain's largest)")
    ap.add_argument("--n", type=int, default=8, help="synthetic scenes")
    ap.add_argument("--size", default="384,512", help="synthetic scenes' H,W")
    ap.add_argument("--jump", type=float, default=1.0, help="flow boundary: vector difference, px")
    ap.add_argument("--rel", type=float, default=None,
                    help="depth boundary: relative difference (default: pacup eval's, 0.05)")
    args = ap.parse_args()

    from pacup.train.synth import camera_blur, make_depth_scene, make_flow_scene, stretch_contrast

    items = []
    if args.data.startswith("synthetic"):
        h, w = (int(v) for v in args.size.split(","))
        for i in range(args.n):
            if args.task == "flow":
                sc = make_flow_scene(i, h, w, frames=0.5)
                items.append((sc["img0"], sc["flow"], np.ones((h, w), bool)))
            else:
                sc = make_depth_scene(i, h, w, clutter=0.5, texture_gain=args.texture_gain)
                d = sc["depth"]
                items.append((sc["rgb"], d, np.isfinite(d) & (d > 0)))
    else:
        from pacup.train.folders import load_dataset

        items = [(s.guide, s.gt, s.valid) for s in load_dataset(args.data, args.task)]
    offsets = (-2, -1, 0, 1, 2)
    rows, cons = [], []
    for g, gt, v in items:
        g = stretch_contrast(np.asarray(g), args.contrast)
        g = camera_blur(g, args.blur) if args.blur else g
        pairs = boundary_pairs(gt, v, args.task, args.jump, args.rel)
        rows.append(profile(g, pairs, offsets))
        cons.append(contrast(g, pairs))
    mean = np.mean(rows, axis=0)
    on, away, strong = np.mean(cons, axis=0)
    what = f"{args.data} ({len(items)} images, blur {args.blur}, contrast x{args.contrast}"
    what += f", texture gain x{args.texture_gain})" if args.data == "synthetic-depth" else ")"
    print(f"{what}: step at offsets {offsets} px relative to the boundary pair: " + " ".join(f"{v:.3f}" for v in mean))
    print(f"{what}: median luminance gradient on the boundaries {on:.4f}, more than 2 px from them {away:.4f}, "
          f"share of the latter above {STRONG} {strong:.3f} (means over the images)")


if __name__ == "__main__":
    main()
