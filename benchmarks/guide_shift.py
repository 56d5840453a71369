"""How a model's error changes when its guide is moved against the depth by whole pixels.

How much a model relies on exact RGB-depth registration: on a well registered frame a
guided model's error is smallest at shift (0, 0) and grows fast away from it (depth-x8
on the motorcycle: +9-10 % at one pixel, +25-26 % at two). Each cell is ``pacup eval``'s
headline metric (protocol B) with the guide shifted by (dy, dx) px, content moving down /
right for positive values, edge pixels repeated (:func:`pacup.train.synth.shift_image`).
Prints a table; asserts nothing.

A minimum away from (0, 0) is no registration estimate on its own: moving the guide also
takes its edges off the depth edges, so the network falls back to smooth interpolation
there, which can pay where the guide misleads (on the TUM frame depth-x8 gains at 8 px
left *and* at 4 px right). ``--edges`` adds a model-free estimate: for each shift, the mean
gradient magnitude of the guide's luminance on the ground truth's depth discontinuities
(:func:`pacup.train.evaluate.depth_edge_mask`, radius 0), relative to the unshifted guide;
its maximum is where the guide's edges sit on the depth edges.

    python benchmarks/guide_shift.py --data ../shared/data/depth/tum_fr1 --model depth-x8 \\
        --factor 8 --dx=-8,-4,-2,0,2 --dy=-2,0,2,4,8 --edges   # "=": lists may start with "-"
"""

from __future__ import annotations

import argparse
import dataclasses

import numpy as np


def _ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v.strip()]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="a depth folder dataset (pacup.train.folders)")
    ap.add_argument("--model", default="depth-x8", help="registry name, .safetensors or a baseline")
    ap.add_argument("--factor", type=int, default=8)
    ap.add_argument("--dx", type=_ints, default=_ints("-2,-1,0,1,2"))
    ap.add_argument("--dy", type=_ints, default=_ints("-2,-1,0,1,2"))
    ap.add_argument("--depth-scale", type=float, default=None)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--edges", action="store_true",
                    help="also print the model-free table: guide gradient on the depth edges per shift")
    args = ap.parse_args()

    import torch

    from pacup.train.evaluate import evaluate, primary_metric
    from pacup.train.folders import load_dataset
    from pacup.train.synth import shift_image

    torch.set_num_threads(args.threads)
    samples = load_dataset(args.data, "depth", args.depth_scale)
    key = None
    print(f"{args.model} on {args.data} (x{args.factor}, protocol B): mean over {len(samples)} image(s), "
          "guide shifted by (dy, dx)")
    print("dy \\ dx " + "".join(f"{dx:>9d}" for dx in args.dx))
    for dy in args.dy:
        cells = []
        for dx in args.dx:
            moved = [dataclasses.replace(s, guide=shift_image(s.guide, dy, dx)) for s in samples]
            r = evaluate(args.model, moved, protocol="B", factor=args.factor)
            key = key or primary_metric(r)
            cells.append(r["metrics"][key])
        print(f"{dy:>7d} " + "".join(f"{v:9.3f}" for v in cells), flush=True)
    print(f"(metric: {key})")
    if args.edges:
        print("guide luminance gradient on ground-truth depth edges, relative to the unshifted guide")
        print("dy \\ dx " + "".join(f"{dx:>9d}" for dx in args.dx))
        base = [edge_gradient(s, 0, 0) for s in samples]
        for dy in args.dy:
            cells = [np.mean([edge_gradient(s, dy, dx) / b for s, b in zip(samples, base)]) for dx in args.dx]
            print(f"{dy:>7d} " + "".join(f"{v:9.3f}" for v in cells), flush=True)


def edge_gradient(sample, dy: int, dx: int, margin: int = 16) -> float:
    """Mean gradient magnitude of the (dy, dx)-shifted guide's luminance on the sample's
    depth discontinuities, ``margin`` px from the border (where shifts repeat edge pixels)."""
    from pacup.train.evaluate import depth_edge_mask
    from pacup.train.synth import shift_image

    lum = np.asarray(sample.guide, np.float64).mean(axis=2)
    gy, gx = np.gradient(shift_image(lum, dy, dx))
    on_depth = sample.edge_depth if sample.edge_depth is not None else sample.gt
    edges = depth_edge_mask(on_depth, sample.valid, radius=0)
    edges[:margin] = edges[-margin:] = False
    edges[:, :margin] = edges[:, -margin:] = False
    return float(np.hypot(gx, gy)[edges].mean())


if __name__ == "__main__":
    main()
