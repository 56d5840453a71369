"""Training-step speed of the Lite networks, closed-form PAC backward against the autograd
recompute, side by side in one process. Prints; asserts nothing.

A step is what ``pacup.train.loop`` does per batch minus the optimizer: forward, masked L1
loss, backward, on one real synthetic batch of the training recipe (128-px crops; depth 8
crops, flow 4 crops = 8 maps). The two backward schedules alternate rep by rep so that a
neighbour's load hits both alike; the median of each is printed with their ratio.

    python benchmarks/bench_train.py [--reps 5] [--threads 1] [--cases depth-x8,flow-x4]
"""

from __future__ import annotations

import argparse
import statistics
import time


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--cases", default="depth-x8,flow-x4")
    args = ap.parse_args()

    import torch

    from pacup.ops import functional as PF
    from pacup.train.loop import TrainConfig, _collate, build_train_model, masked_loss, normalise_batch
    from pacup.train.synth import SyntheticDepthDataset, SyntheticFlowDataset

    torch.set_num_threads(args.threads)
    closed_form = PF._BandedPac._dense_ok
    print(f"torch {torch.__version__}, {args.threads} thread(s), median of {args.reps} steps per schedule")
    print(f"{'case':<10}{'closed form s':>15}{'recompute s':>13}{'closed / recompute':>20}")
    for case in args.cases.split(","):
        task, f = case.split("-x")
        f, flow = int(f), task == "flow"
        torch.manual_seed(0)
        model = build_train_model(TrainConfig(task=task, factor=f, variant="lite"))
        ds = (SyntheticFlowDataset if flow else SyntheticDepthDataset)(f, crop=128)
        b = _collate([ds[i] for i in range(4 if flow else 8)])
        xn, tn, tv = normalise_batch(b, f, flow)

        def step():
            t0 = time.perf_counter()
            loss = masked_loss(model(xn, b["guide"]), tn, tv, "l1")
            model.zero_grad(set_to_none=True)
            loss.backward()
            return time.perf_counter() - t0

        times = {True: [], False: []}
        step()  # warm-up
        for _ in range(args.reps):
            for on in (True, False):
                PF._BandedPac._dense_ok = closed_form if on else staticmethod(lambda *a: False)
                times[on].append(step())
        PF._BandedPac._dense_ok = closed_form
        a, r = statistics.median(times[True]), statistics.median(times[False])
        print(f"{case:<10}{a:>15.3f}{r:>13.3f}{a / r:>19.2f}x")


if __name__ == "__main__":
    main()
