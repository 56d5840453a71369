"""PAC layer speed and memory, side by side, in one run. Prints; asserts nothing.

Shapes (issue 2): batch 1, 32 -> 32 channels, k = 5, 16 guide channels, 480x640 output;
the transposed x2 layer goes from 240x320 to 480x640. Each case runs in its own process so
that its peak memory (the process's peak resident set above what the inputs occupy) is its
own. Compared: the fast path, the unfold reference, and nn.Conv2d / nn.ConvTranspose2d of the
same shape (the physical floor: no adapting kernel at all). With gradients also "recompute":
the fast path with its closed-form dense backward switched off, so that the backward
re-runs each band's taps under autograd (the general schedule, which the closed form beats).

    python benchmarks/bench_ops.py [--reps 3] [--device cpu|cuda] [--dtype float32]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

CASES = [
    ("conv", "fast"), ("conv", "recompute"), ("conv", "reference"), ("conv", "torch"),
    ("transposed", "fast"), ("transposed", "recompute"), ("transposed", "reference"), ("transposed", "torch"),
]


def _rss_kib(field):
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field):
                return int(line.split()[1])
    return 0


def run_case(layer, impl, mode, reps, device, dtype_name):
    import torch
    import torch.nn.functional as F

    from pacup.ops import functional as PF
    from pacup.ops import reference as R

    dtype = getattr(torch, dtype_name)
    if impl == "recompute":
        PF._BandedPac._dense_ok = staticmethod(lambda *a: False)
        impl = "fast"
    torch.manual_seed(0)
    dev = torch.device(device)
    grad = mode == "fwd+bwd"
    if layer == "conv":
        x = torch.randn(1, 32, 480, 640, device=dev, dtype=dtype)
        w = torch.randn(32, 32, 5, 5, device=dev, dtype=dtype) * 0.03
    else:
        x = torch.randn(1, 32, 240, 320, device=dev, dtype=dtype)
        w = torch.randn(32, 32, 5, 5, device=dev, dtype=dtype) * 0.03
    f = torch.randn(1, 16, 480, 640, device=dev, dtype=dtype)
    for t in (x, w, f):
        t.requires_grad_(grad)

    def call():
        if layer == "conv":
            if impl == "torch":
                return F.conv2d(x, w, padding=2)
            fn = PF.pac_conv2d if impl == "fast" else R.pac_conv2d
            return fn(x, f, w, padding=2)
        if impl == "torch":
            return F.conv_transpose2d(x, w, stride=2, padding=2, output_padding=1)
        fn = PF.pac_conv_transpose2d if impl == "fast" else R.pac_conv_transpose2d
        return fn(x, f, w, stride=2, padding=2, output_padding=1)

    def step():
        if grad:
            out = call()
            out.backward(torch.ones_like(out))
            for t in (x, w, f):
                t.grad = None
        else:
            with torch.no_grad():
                call()
        if dev.type == "cuda":
            torch.cuda.synchronize()

    # Peak memory of the first call, above what the inputs already hold.
    if dev.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        step()
        peak_mb = (torch.cuda.max_memory_allocated() - base) / 2**20
    else:
        base = _rss_kib("VmRSS")
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")  # resets the peak resident set (VmHWM) to the current one
        step()
        peak_mb = (_rss_kib("VmHWM") - base) / 1024
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    times.sort()
    return {"time_ms": times[len(times) // 2] * 1000, "peak_mb": peak_mb}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--skip-reference-backward", action="store_true",
                    help="the reference backward at 480x640 needs several GB and seconds")
    ap.add_argument("--_case", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args._case:
        print(json.dumps(run_case(*args._case, args.reps, args.device, args.dtype)))
        return

    import torch

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}, {args.dtype}, "
          f"median of {args.reps}")
    results = {}
    for mode in ("fwd", "fwd+bwd"):
        for layer, impl in CASES:
            if mode == "fwd+bwd" and impl == "reference" and args.skip_reference_backward:
                continue
            if mode == "fwd" and impl == "recompute":
                continue
            cmd = [sys.executable, __file__, "--reps", str(args.reps), "--device", args.device,
                   "--dtype", args.dtype, "--_case", layer, impl, mode]
            proc = subprocess.run(cmd, capture_output=True, text=True, env=os.environ)
            if proc.returncode != 0:
                print(f"{layer} {impl} {mode}: failed\n{proc.stderr[-2000:]}")
                continue
            results[(layer, impl, mode)] = json.loads(proc.stdout.strip().splitlines()[-1])

    head = f"{'layer':<11}{'pass':<9}{'impl':<11}{'time ms':>10}{'peak MB':>10}{'time / torch':>14}{'ref mem / mem':>15}"
    print(head)
    print("-" * len(head))
    for mode in ("fwd", "fwd+bwd"):
        for layer, impl in CASES:
            r = results.get((layer, impl, mode))
            if r is None:
                continue
            floor = results.get((layer, "torch", mode))
            ref = results.get((layer, "reference", mode))
            ratio_t = f"{r['time_ms'] / floor['time_ms']:.2f}x" if floor else "-"
            ratio_m = f"{ref['peak_mb'] / max(r['peak_mb'], 1e-3):.1f}x" if ref and impl != "reference" else "-"
            print(f"{layer:<11}{mode:<9}{impl:<11}{r['time_ms']:>10.1f}{r['peak_mb']:>10.1f}{ratio_t:>14}{ratio_m:>15}")


if __name__ == "__main__":
    main()
