"""Where a depth method's error lies relative to the holes of the ground truth.

Sensor depth (Kinect, RealSense, ToF) has holes: shadows beside object boundaries, dark or
shiny surfaces, far range. This splits each method's squared error (protocol B, valid
ground truth inside ``pacup eval``'s border) by the distance of each pixel to the nearest
invalid ground-truth pixel (Chebyshev, in full-resolution px) and prints, per distance
band, the share of pixels, the RMSE there and the share of the method's total squared
error. Optionally the guide is moved first (``--shift DY,DX``,
:func:`pacup.train.synth.shift_image`), e.g. by the registration offset that
``benchmarks/guide_shift.py --edges`` finds, and its contrast scaled about its mean level
(``--contrast C``, :func:`pacup.train.synth.stretch_contrast`). ``--flatten R`` then blurs
the guide (Gaussian, sigma 4 px) wherever it is more than R px from a depth edge of the
ground truth (``pacup eval``'s rule, :func:`pacup.train.evaluate.depth_edge_mask`): the
texture goes, the edges that the depth confirms stay; what a method gains from that is
what the texture cost it. Prints tables; asserts nothing.

    python benchmarks/hole_error.py --data ../shared/data/depth/tum_fr1 --factor 8 \\
        --method bicubic --method depth-x8 --method runs/depth-x8-k1/model.safetensors
"""

from __future__ import annotations

import argparse


def _ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v.strip()]


def hole_distance(valid, limit: int):
    """Chebyshev distance (px) of each pixel to the nearest invalid one, capped at ``limit + 1``
    (pixels with no invalid pixel within ``limit`` px get ``limit + 1``)."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    dist = np.full(valid.shape, limit + 1, np.int32)
    near = torch.from_numpy(~valid).float()[None, None]
    for d in range(0, limit + 1):
        if d:
            near = F.max_pool2d(near, 3, stride=1, padding=1)
        hit = near[0, 0].numpy() > 0
        dist[hit & (dist > d)] = d
    return dist


def flatten_texture(guide, depth, valid, radius: int, sigma: float = 4.0):
    """``guide`` (uint8 H, W, 3) blurred (Gaussian ``sigma``) wherever it is more than
    ``radius`` px from a depth edge of ``depth`` (valid pixels; pacup eval's rule)."""
    import numpy as np
    from PIL import Image, ImageFilter

    from pacup.train.evaluate import depth_edge_mask

    near = depth_edge_mask(depth, valid, radius=radius)
    soft = np.asarray(Image.fromarray(np.ascontiguousarray(guide)).filter(ImageFilter.GaussianBlur(sigma)))
    return np.where(near[..., None], guide, soft)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="a depth folder dataset (pacup.train.folders)")
    ap.add_argument("--method", action="append", required=True,
                    help="registry name, .safetensors or a baseline (repeatable)")
    ap.add_argument("--factor", type=int, default=8)
    ap.add_argument("--bands", type=_ints, default=_ints("2,5,10"),
                    help="upper edges (px) of the distance bands; the last band is everything beyond")
    ap.add_argument("--shift", type=_ints, default=[0, 0], help="move the guide by DY,DX px first")
    ap.add_argument("--contrast", type=float, default=1.0, help="scale the guide's contrast first")
    ap.add_argument("--flatten", type=int, default=None,
                    help="blur the guide farther than R px from a ground-truth depth edge")
    ap.add_argument("--depth-scale", type=float, default=None)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    if len(args.shift) != 2:
        ap.error("--shift takes DY,DX")

    import numpy as np
    import torch

    from pacup.train.degrade import crop_to_multiple, degrade
    from pacup.train.evaluate import DEPTH_BORDER, _align, _border_mask, protocol_method, resolve_method
    from pacup.train.folders import load_dataset
    from pacup.train.synth import shift_image, stretch_contrast

    torch.set_num_threads(args.threads)
    samples = load_dataset(args.data, "depth", args.depth_scale)
    bands = sorted(set(args.bands))
    edges = [-1] + bands + [10**9]
    names = [f"<= {bands[0]}"] + [f"({lo}, {hi}]" for lo, hi in zip(bands, bands[1:])] + [f"> {bands[-1]}"]
    deg = protocol_method("B")
    methods = [resolve_method(m, "depth", args.factor) for m in args.method]
    for s in samples:
        f = args.factor
        gt, valid = crop_to_multiple(s.gt, f), crop_to_multiple(s.valid, f)
        guide = np.array(crop_to_multiple(shift_image(stretch_contrast(np.asarray(s.guide), args.contrast),
                                                      *args.shift), f))
        if args.flatten is not None:
            guide = flatten_texture(guide, gt, valid, args.flatten)
        low, lv = degrade(gt, f, deg, valid=valid)
        sel = valid & _border_mask(gt.shape, DEPTH_BORDER) & np.isfinite(gt)  # as pacup eval's metrics
        dist = hole_distance(valid, bands[-1])
        scale, unit = (100.0, "cm") if s.units == "m" else (1.0, s.units)
        print(f"{s.name}: x{f}, protocol B, guide shifted by {tuple(args.shift)}, contrast x{args.contrast}, "
              f"{'texture kept' if args.flatten is None else f'blurred > {args.flatten} px from depth edges'}; "
              f"{100 * (~valid).mean():.1f} % of the ground truth invalid; RMSE in {unit}")
        print(f"{'method':<44}{'RMSE':>9}" + "".join(f"{n:>26}" for n in names))
        share = [((dist > lo) & (dist <= hi) & sel).sum() / sel.sum() for lo, hi in zip(edges[:-1], edges[1:])]
        print(f"{'  share of pixels':<44}{'':>9}" + "".join(f"{100 * v:>25.1f}%" for v in share))
        for mname, fn in methods:
            pred = fn(low, lv, guide, f, _align(deg), False)
            se = np.where(sel, (pred.astype(np.float64) - gt) * scale, 0.0) ** 2
            total = se[sel].sum()
            cells = []
            for lo, hi in zip(edges[:-1], edges[1:]):
                m = (dist > lo) & (dist <= hi) & sel
                rmse = np.sqrt(se[m].mean()) if m.any() else float("nan")
                cells.append(f"{rmse:9.3f} ({100 * se[m].sum() / total:5.1f} % of SE)")
            print(f"{mname[-44:]:<44}{np.sqrt(total / sel.sum()):9.3f}" + "".join(f"{c:>26}" for c in cells),
                  flush=True)


if __name__ == "__main__":
    main()
