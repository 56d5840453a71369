"""How much a PAC network's guidance actually adapts its kernels, on real guides.

A PacJointUpsample decoder stage weights each tap by K = exp(-0.5 ||f_p - f_q||^2) of
its guidance features (scaled by the stage's learned guide scale). Where K is 1
everywhere, the stage is a plain transposed convolution: the network has switched its
guidance off and is the K = 1 ablation in all but name. This prints, for every stage,
the distribution of K between pixels two apart (horizontal and vertical pairs, at that
stage's resolution, away from the image border) over the guides of a folder dataset:
mean, 1st percentile and the share of pairs below 0.5 (a strong cut). It runs only the
guidance branch. Prints a table; asserts nothing.

    python benchmarks/kernel_usage.py --data ../shared/data/flow/flyingchairs9 --task flow \\
        --factor 4 --method flow-x4 --method runs/flow-x4-full-pac/model.safetensors
"""

from __future__ import annotations

import argparse


def pair_kernels(feats, step: int = 2):
    """K for every horizontal and vertical pair ``step`` apart in (1, C, H, W) features."""
    import torch

    dx = (feats[..., :, step:] - feats[..., :, :-step]).pow(2).sum(1).flatten()
    dy = (feats[..., step:, :] - feats[..., :-step, :]).pow(2).sum(1).flatten()
    return torch.exp(-0.5 * torch.cat([dx, dy]))


def stage_kernels(model, guides, step: int = 2):
    """Per decoder stage, K of all pairs ``step`` apart over ``guides`` ((H, W, 3) uint8).

    Features within the guidance branch's reach of the image border (three k x k
    convolutions over zero padding) are left out: they differ from their neighbours even
    on a flat guide, and this measures what the guide's content does to K.
    """
    import numpy as np
    import torch

    n = model.n_stages
    reach = 3 * (model.config["kernel_size"] // 2)  # full-resolution pixels
    per_stage = [[] for _ in range(n)]
    with torch.no_grad():
        for g in guides:
            t = torch.from_numpy(np.ascontiguousarray(g)).permute(2, 0, 1)[None].float() / 255.0
            for i, f in enumerate(model.guide_features(t)):
                m = -(-reach // 2 ** (n - 1 - i))  # in this stage's pixels
                per_stage[i].append(pair_kernels(f[..., m:-m, m:-m], step))
    return [torch.cat(k) for k in per_stage]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="a folder dataset (pacup.train.folders)")
    ap.add_argument("--task", choices=["depth", "flow"], required=True)
    ap.add_argument("--factor", type=int, required=True)
    ap.add_argument("--method", action="append", required=True, help="registry name or .safetensors (repeatable)")
    ap.add_argument("--n", type=int, default=4, help="first N images of the dataset")
    ap.add_argument("--step", type=int, default=2, help="distance of the pixel pairs, in stage pixels")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()

    import torch

    from pacup.models import PacJointUpsample
    from pacup.train.ablations import PacJointUpsampleK1
    from pacup.train.degrade import crop_to_multiple
    from pacup.train.evaluate import load_network
    from pacup.train.folders import load_dataset

    torch.set_num_threads(args.threads)
    samples = load_dataset(args.data, args.task)[: args.n]
    guides = [crop_to_multiple(s.guide, args.factor) for s in samples]
    print(f"{args.data}: {len(guides)} guide(s), x{args.factor}; K between pixels {args.step} apart, "
          "per decoder stage (coarsest first): mean / 1st percentile / share < 0.5")
    for name in args.method:
        model, label = load_network(name, args.task, args.factor)  # ablation files too
        label = label[-44:]
        if isinstance(model, PacJointUpsampleK1):
            print(f"{label:<46}1 by construction (K = 1 ablation)")
            continue
        if not isinstance(model, PacJointUpsample):
            print(f"{label:<46}no PAC kernel ({type(model).__name__})")
            continue
        cells = []
        for k in stage_kernels(model.eval().float(), guides, args.step):
            q = torch.quantile(k[torch.randperm(k.numel(), generator=torch.Generator().manual_seed(0))[:1_000_000]],
                               0.01).item()
            cells.append(f"{k.mean().item():.3f} / {q:.3f} / {100 * (k < 0.5).float().mean().item():.1f} %")
        print(f"{label:<46}" + "   ".join(cells), flush=True)


if __name__ == "__main__":
    main()
