"""How much a dev-set score depends on where the low-res grid falls on the image.

``pacup eval`` crops each ground truth at its top-left corner to a multiple of the factor,
so the low-res pixels always cover the same blocks of the image: one sampling phase. This
re-runs the evaluation with the image first cropped by (dy, dx) px at the top-left for
several phases and prints, per method, its metric's ratio to bicubic at every phase (each
against bicubic at the same phase) and their mean. Prints a table; asserts nothing.

    python benchmarks/phase_spread.py --data ../shared/data/depth/tum_fr1 --factor 8 \\
        --method depth-x8 --method runs/depth-x8-k1/model.safetensors
"""

from __future__ import annotations

import argparse
import dataclasses

# (dy, dx) as fractions of the factor: phase 0 (pacup eval's), the three half-block
# shifts, then two off-diagonal ones.
PHASES = ((0, 0), (0, 4), (4, 0), (4, 4), (2, 6), (6, 2))


def phase_offsets(n: int, factor: int) -> list[tuple[int, int]]:
    """The first ``n`` phases, in px at ``factor`` (eighths of a low-res pixel, rounded)."""
    if not 1 <= n <= len(PHASES):
        raise ValueError(f"n must be in 1..{len(PHASES)}, got {n}")
    return [(round(dy * factor / 8), round(dx * factor / 8)) for dy, dx in PHASES[:n]]


def shifted(sample, dy: int, dx: int):
    """``sample`` with every per-pixel array cropped by ``dy`` rows and ``dx`` columns at
    the top-left (the name gets ``@dy,dx``)."""
    crop = {}
    for key in ("guide", "gt", "valid", "noc", "edge_depth"):
        a = getattr(sample, key)
        crop[key] = None if a is None else a[dy:, dx:]
    return dataclasses.replace(sample, name=f"{sample.name}@{dy},{dx}", **crop)


def phase_scores(method: str, samples, offsets, factor: int, protocol: str) -> list[float]:
    """``method``'s headline metric (pacup eval's) over ``samples``, per phase."""
    from pacup.train.evaluate import evaluate, primary_metric

    out = []
    for dy, dx in offsets:
        r = evaluate(method, [shifted(s, dy, dx) for s in samples], protocol, factor)
        out.append(r["metrics"][primary_metric(r)])
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="a folder dataset (pacup.train.folders)")
    ap.add_argument("--method", action="append", required=True,
                    help="registry name, .safetensors or a baseline (repeatable)")
    ap.add_argument("--factor", type=int, default=8)
    ap.add_argument("--phases", type=int, default=len(PHASES), help=f"how many phases (1-{len(PHASES)})")
    ap.add_argument("--protocol", default=None, help="A or B (depth; default B), flow for flow")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    import numpy as np
    import torch

    from pacup.train.evaluate import default_protocol
    from pacup.train.folders import load_dataset

    torch.set_num_threads(args.threads)
    samples = load_dataset(args.data)
    task = samples[0].kind
    protocol = args.protocol or default_protocol(task)
    offsets = phase_offsets(args.phases, args.factor)
    print(f"{args.data}: {len(samples)} image(s), x{args.factor}, protocol {protocol}; ratio to bicubic at each "
          f"phase (dy, dx in px)")
    print(f"{'method':<40}{'mean':>8}" + "".join(f"{f'{dy},{dx}':>9}" for dy, dx in offsets))
    base = phase_scores("bicubic", samples, offsets, args.factor, protocol)
    for m in args.method:
        r = [v / b for v, b in zip(phase_scores(m, samples, offsets, args.factor, protocol), base)]
        print(f"{m[-40:]:<40}{np.mean(r):8.3f}" + "".join(f"{v:9.3f}" for v in r), flush=True)


if __name__ == "__main__":
    main()
