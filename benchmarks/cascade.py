"""Chains of released models against one model of the whole factor.

A x16 upsampling can also be two x4 steps: the first guided by the RGB image area-averaged
to 4x the input's size, the second by the full image; or an x8 network at half the guide's
size followed by a classical x2 step (``bicubic``, ``jbu`` or ``guided``: one per chain, its
factor is what the networks leave). This scores such chains beside single models on a
folder dataset and prints each one's metric as a ratio to bicubic. Prints a table; asserts
nothing.

    python benchmarks/cascade.py --data ../shared/data/depth/motorcycle --factor 16 \\
        --chain depth-x4,depth-x4 --chain depth-x8,jbu --chain depth-x16
"""

from __future__ import annotations

import argparse


def chain_method(nets, factors, flow: bool = False):
    """``pacup.train.evaluate``'s method callable for networks run one after another, each
    upsampling by its own factor; the guide of every step but the last is the full guide
    area-averaged (Pillow BOX) to that step's output size. Invalid pixels of a step's
    output (NaN) are invalid inputs of the next. A step may also be the name of a classical
    method of :data:`pacup.train.baselines.BASELINES` (``'jbu'``), run as ``pacup eval`` runs
    it (pixel-centre aligned; flow vectors scaled into the step's output pixels)."""
    import numpy as np
    from PIL import Image

    from pacup import pipeline
    from pacup.train.evaluate import resolve_method

    def run(low, low_valid, guide, factor, align, is_flow):
        total = int(np.prod(factors))
        if total != factor:
            raise ValueError(f"the chain upsamples x{total}, the evaluation needs x{factor}")
        up = pipeline.upsample_flow if is_flow else pipeline.upsample_depth
        x, valid, scale = low, low_valid, 1
        for net, f in zip(nets, factors):
            scale *= f
            hw = (low.shape[0] * scale, low.shape[1] * scale)
            g = guide if hw == guide.shape[:2] else np.array(Image.fromarray(guide).resize(hw[::-1], Image.BOX))
            if isinstance(net, str):
                x = resolve_method(net)[1](x, valid, g, f, "centre", is_flow)
            else:
                x = up(x, g, f, model=net, valid=valid, device="cpu")
            valid = np.isfinite(x).all(axis=-1) if x.ndim == 3 else np.isfinite(x)
            x = np.where(valid[..., None] if x.ndim == 3 else valid, x, 0).astype(np.float32)
        # pacup.pipeline.upsample_flow returns vectors in output pixels already
        return np.where(valid[..., None] if x.ndim == 3 else valid, x, np.nan).astype(np.float32)

    return run


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="a folder dataset (pacup.train.folders)")
    ap.add_argument("--chain", action="append", required=True,
                    help="comma-separated registry names or .safetensors run in order (repeatable); one name "
                         "is a single model")
    ap.add_argument("--factor", type=int, default=16)
    ap.add_argument("--protocol", default=None, help="A or B (depth; default B), flow for flow")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    import numpy as np
    import torch

    from pacup.train.baselines import BASELINES
    from pacup.train.evaluate import default_protocol, evaluate, load_network, primary_metric
    from pacup.train.folders import load_dataset

    torch.set_num_threads(args.threads)
    samples = load_dataset(args.data)
    task = samples[0].kind
    protocol = args.protocol or default_protocol(task)
    base = evaluate("bicubic", samples, protocol, args.factor)
    key = primary_metric(base)
    b = base["metrics"][key]
    print(f"{args.data}: {len(samples)} image(s), x{args.factor}, protocol {protocol}; {key} and its ratio "
          f"to bicubic ({b:.4f})")
    for spec in args.chain:
        names = spec.split(",")
        classic = [n for n in names if n in BASELINES]
        if len(classic) > 1:
            ap.error(f"--chain {spec}: at most one classical step ({', '.join(classic)})")
        nets = [n if n in BASELINES else load_network(n, task)[0] for n in names]
        learned = int(np.prod([n.factor for n in nets if not isinstance(n, str)]))
        if classic and (args.factor % learned or args.factor == learned):
            ap.error(f"--chain {spec}: the networks upsample x{learned}, which leaves no whole factor of "
                     f"x{args.factor} to {classic[0]}")
        factors = [args.factor // learned if isinstance(n, str) else int(n.factor) for n in nets]
        r = evaluate(chain_method(nets, factors), samples, protocol, args.factor, name=spec)
        v = r["metrics"][key]
        print(f"{spec:<40}{v:10.4f}{v / b:8.3f}", flush=True)


if __name__ == "__main__":
    main()
