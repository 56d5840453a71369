"""How a model's error changes when its guide is moved against the depth by whole pixels.

A probe of RGB-depth registration: on a well registered frame the error is smallest at
shift (0, 0) and grows fast away from it; a minimum elsewhere says the frame's depth and
RGB are offset by about that much (Kinect registration, depth and colour taken at
different instants). Each cell is ``pacup eval``'s headline metric (protocol B) with the
guide shifted by (dy, dx) px, content moving down / right for positive values, edge pixels
repeated (:func:`pacup.train.synth.shift_image`). Prints a table; asserts nothing.

    python benchmarks/guide_shift.py --data ../shared/data/depth/tum_fr1 --model depth-x8 \\
        --factor 8 --dx=-8,-4,-2,0,2 --dy=-2,0,2,4,8   # "=": lists may start with "-"
"""

from __future__ import annotations

import argparse
import dataclasses


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


if __name__ == "__main__":
    main()
