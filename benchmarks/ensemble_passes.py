"""What each pass of the flip ensemble contributes.

``--ensemble`` averages the network over four flips of input and guide (none, horizontal,
vertical, both), each flipped back. This scores every single flip, every pair of flips and
all four on a folder dataset and prints each one's metric as a ratio to bicubic, so the
gain of one more pass can be read off. Prints a table; asserts nothing.

    python benchmarks/ensemble_passes.py --data ../shared/data/depth/motorcycle --factor 8 \\
        --model depth-x8
"""

from __future__ import annotations

import argparse
import itertools

# Flip dims per pass, in the order the pipeline's ensemble runs them.
FLIPS = {"id": (), "h": (-1,), "v": (-2,), "hv": (-2, -1)}


def flip_average(module, names):
    """An ``nn.Module`` that averages ``module`` over the flips ``names`` (keys of ``FLIPS``),
    with the ``factor`` and ``receptive_radius`` the pipeline reads from a network."""
    from torch import nn

    class FlipAverage(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = module
            self.factor = module.factor
            self.receptive_radius = module.receptive_radius

        def forward(self, low, guide):
            acc = None
            for n in names:
                d = FLIPS[n]
                y = self.inner(low.flip(d), guide.flip(d)).flip(d) if d else self.inner(low, guide)
                acc = y.float() if acc is None else acc + y.float()
            return (acc / len(names)).to(low.dtype)

    if not names or any(n not in FLIPS for n in names):
        raise ValueError(f"flips must be a non-empty subset of {sorted(FLIPS)}, got {names}")
    return FlipAverage().eval()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="a folder dataset (pacup.train.folders)")
    ap.add_argument("--model", required=True, help="registry name or .safetensors")
    ap.add_argument("--factor", type=int, default=8)
    ap.add_argument("--protocol", default=None, help="A or B (depth; default B), flow for flow")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    import torch

    from pacup.train.evaluate import default_protocol, evaluate, load_network, primary_metric
    from pacup.train.folders import load_dataset

    torch.set_num_threads(args.threads)
    samples = load_dataset(args.data)
    task = samples[0].kind
    protocol = args.protocol or default_protocol(task)
    net, name = load_network(args.model, task, args.factor)
    base = evaluate("bicubic", samples, protocol, args.factor)
    key = primary_metric(base)
    b = base["metrics"][key]
    print(f"{args.data}: {len(samples)} image(s), x{args.factor}, protocol {protocol}, {name}; "
          f"{key} and its ratio to bicubic ({b:.4f})")
    for k in (1, 2, 4):
        for names in itertools.combinations(FLIPS, k):
            r = evaluate(flip_average(net, names), samples, protocol, args.factor)
            v = r["metrics"][key]
            print(f"{len(names)} pass(es) {'+'.join(names):<12}{v:10.4f}{v / b:8.3f}", flush=True)


if __name__ == "__main__":
    main()
