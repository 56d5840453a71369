"""Where a flow method's end-point error lies: near motion boundaries, on texture edges, elsewhere.

RGB guidance can only pay where the guide's edges are the flow's edges (motion
boundaries), and it costs where the guide has edges the flow has not (texture inside one
moving layer). This splits each method's EPE (antialiased-bilinear protocol, as ``pacup
eval``) over the pixels of a flow folder dataset into:

- ``motion``: within ``--radius`` px (Chebyshev) of a motion boundary, i.e. of a pixel
  whose ground-truth flow differs from a 4-neighbour's by more than ``--jump`` px;
- ``texture``: farther than that from a motion boundary, but on a guide edge (luminance
  gradient magnitude, central differences on [0, 1] RGB, above ``--grad``);
- ``flat``: everything else.

It prints per band the share of pixels, the mean EPE there and the share of the method's
summed EPE, over all images together. Prints tables; asserts nothing.

What the guidance makes of the guide can be probed by changing it first: ``--contrast C``
scales its contrast about its mean level (:func:`pacup.train.synth.stretch_contrast`), and
``--guide`` replaces it: ``oracle`` is a colour image of the ground-truth flow (edges at the
motion boundaries and nowhere else), ``blend`` the mean of the RGB and that, ``near`` the
RGB within ``--radius`` + 1 px of a motion boundary and the RGB blurred (Gaussian, sigma 4)
elsewhere. The bands stay those of the dataset's own guide.

    python benchmarks/flow_bands.py --data ../shared/data/flow/flyingchairs9 --factor 4 \\
        --method bicubic --method flow-x4 --method runs/flow-x4-k1/model.safetensors
    python benchmarks/flow_bands.py --data ../shared/data/flow/flyingchairs9 --factor 4 --guide oracle ...
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from hole_error import hole_distance  # noqa: E402


def motion_boundaries(flow, jump: float):
    """Pixels whose flow differs from a right or lower neighbour's by more than ``jump`` px
    (both pixels of such a pair are marked)."""
    import numpy as np

    b = np.zeros(flow.shape[:2], bool)
    dx = np.linalg.norm(flow[:, 1:] - flow[:, :-1], axis=2) > jump
    dy = np.linalg.norm(flow[1:] - flow[:-1], axis=2) > jump
    b[:, 1:] |= dx
    b[:, :-1] |= dx
    b[1:] |= dy
    b[:-1] |= dy
    return b


def luminance(guide):
    """(H, W) luminance of an RGB guide in [0, 1] (8-bit guides are scaled)."""
    import numpy as np

    g = np.asarray(guide, np.float32)
    if np.asarray(guide).dtype == np.uint8:
        g = g / 255.0
    return g @ np.array([0.299, 0.587, 0.114], np.float32)


def guide_edges(guide, grad: float):
    """Luminance gradient magnitude (central differences) above ``grad``."""
    import numpy as np

    gy, gx = np.gradient(luminance(guide))
    return np.hypot(gx, gy) > grad


def flow_colour(flow):
    """uint8 (H, W, 3) image of a flow field: u and v each min-max scaled to red and green,
    blue constant; its edges are the flow's."""
    import numpy as np

    def unit(a):
        return (a - a.min()) / max(1e-6, float(a.max() - a.min()))

    rgb = np.stack([unit(flow[..., 0]), unit(flow[..., 1]), np.full(flow.shape[:2], 0.5)], -1)
    return (rgb * 255 + 0.5).astype(np.uint8)


def probe_guide(guide, flow, mode: str = "rgb", contrast: float = 1.0, radius: int = 3):
    """The guide as ``--guide`` / ``--contrast`` change it (see the module docstring)."""
    import numpy as np
    from PIL import Image, ImageFilter

    from pacup.train.synth import stretch_contrast

    g = stretch_contrast(np.asarray(guide), contrast)  # folder guides are uint8 (pacup.train.folders)
    if mode == "rgb":
        return g
    if mode == "oracle":
        return flow_colour(flow)
    if mode == "blend":
        return ((g.astype(np.float32) + flow_colour(flow)) / 2 + 0.5).astype(np.uint8)
    if mode == "near":
        near = hole_distance(~motion_boundaries(flow, 1.0), radius + 1) <= radius + 1
        soft = np.asarray(Image.fromarray(g).filter(ImageFilter.GaussianBlur(4)))
        return np.where(near[..., None], g, soft)
    raise ValueError(f"unknown guide mode {mode!r}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="a flow folder dataset (pacup.train.folders)")
    ap.add_argument("--method", action="append", required=True,
                    help="registry name, .safetensors or a baseline (repeatable)")
    ap.add_argument("--factor", type=int, default=4)
    ap.add_argument("--jump", type=float, default=1.0, help="flow difference (px) that marks a motion boundary")
    ap.add_argument("--radius", type=int, default=3, help="px around a motion boundary counted as 'motion'")
    ap.add_argument("--grad", type=float, default=0.05, help="luminance gradient that marks a guide edge")
    ap.add_argument("--guide", default="rgb", choices=["rgb", "oracle", "blend", "near"],
                    help="replace the guide first (see above)")
    ap.add_argument("--contrast", type=float, default=1.0, help="scale the guide's contrast first")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()

    import numpy as np
    import torch

    from pacup.train.degrade import crop_to_multiple, degrade
    from pacup.train.evaluate import FLOW_BORDER, _align, _border_mask, protocol_method, resolve_method
    from pacup.train.folders import load_dataset

    torch.set_num_threads(args.threads)
    samples = load_dataset(args.data, "flow")
    deg = protocol_method("flow")
    methods = [resolve_method(m, "flow", args.factor) for m in args.method]
    f = args.factor
    names = ("motion", "texture", "flat")
    items = []
    for s in samples:
        gt, valid = crop_to_multiple(s.gt, f), crop_to_multiple(s.valid, f)
        guide = np.array(crop_to_multiple(probe_guide(s.guide, s.gt, args.guide, args.contrast, args.radius), f))
        low, lv = degrade(gt, f, deg, valid=valid, flow=True)
        sel = valid & _border_mask(gt.shape[:2], FLOW_BORDER) & np.isfinite(gt).all(axis=2)
        near = hole_distance(~motion_boundaries(gt, args.jump), args.radius) <= args.radius
        tex = ~near & guide_edges(np.array(crop_to_multiple(s.guide, f)), args.grad)  # the dataset's own guide
        bands = [near & sel, tex & sel, ~near & ~tex & sel]
        items.append((gt, guide, low, lv, sel, bands))
    n_sel = sum(int(it[4].sum()) for it in items)
    shares = [sum(int(it[5][i].sum()) for it in items) / n_sel for i in range(3)]
    print(f"{args.data}: x{f}, {len(items)} image(s); motion boundary: flow jump > {args.jump} px, "
          f"radius {args.radius} px; guide edge: gradient > {args.grad}; guide: {args.guide}, contrast x{args.contrast}")
    print(f"{'method':<44}{'EPE':>8}" + "".join(f"{n:>24}" for n in names))
    print(f"{'  share of pixels':<44}{'':>8}" + "".join(f"{100 * v:>23.1f}%" for v in shares))
    for mname, fn in methods:
        sums, counts, total = [0.0] * 3, [0] * 3, 0.0
        for gt, guide, low, lv, sel, bands in items:
            pred = fn(low, lv, guide, f, _align(deg), True)
            epe = np.where(sel, np.linalg.norm(pred.astype(np.float64) - gt, axis=2), 0.0)
            total += epe[sel].sum()
            for i, m in enumerate(bands):
                sums[i] += epe[m].sum()
                counts[i] += int(m.sum())
        cells = [f"{sums[i] / max(1, counts[i]):7.3f} ({100 * sums[i] / total:5.1f} %)" for i in range(3)]
        print(f"{mname[-44:]:<44}{total / n_sel:8.4f}" + "".join(f"{c:>24}" for c in cells), flush=True)


if __name__ == "__main__":
    main()
