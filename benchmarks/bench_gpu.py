"""Fused Triton PAC kernels on a GPU, side by side with the alternatives, in one run.
Prints tables; asserts nothing.

Layers (issue 5): batch 1, 32 -> 32 channels, k = 5, 16 guide channels, 480x640 output
(the transposed x2 layer goes from 240x320 to 480x640). Compared, forward and
forward+backward: the fused kernels, the PyTorch fast path (``pacup.ops.functional`` with
the fused dispatch switched off), the unfold reference, and nn.Conv2d / nn.ConvTranspose2d
of the same shape (cuDNN, no adapting kernel: the floor). Times are medians of CUDA-event
timings after warm-up; memory is the peak allocated above what the inputs hold
(torch.cuda.max_memory_allocated).

Then the whole depth x8 network (``pacup.models.PacJointUpsample(8)``, random weights,
inference) at 640x480 and 3840x2160 in float16, fused vs the PyTorch fast path.

    python benchmarks/bench_gpu.py [--dtype float16 float32] [--reps 20] [--no-network]

Without CUDA it says so and exits 0. ``--cpu-smoke`` runs every code path at toy sizes on
the CPU (fused kernels through Triton's interpreter) to check the script itself; its
numbers mean nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import time

import torch
import torch.nn.functional as F


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(fn, device, reps, warmup):
    """(median seconds, peak bytes above the memory held before the first call) of fn()."""
    _sync(device)
    peak = None
    if device.type == "cuda":
        torch.cuda.empty_cache()
        base = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
    fn()  # first call: compilation, autotuning caches, and the memory peak
    _sync(device)
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(device) - base
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        if device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end) / 1e3)
        else:
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
    return statistics.median(times), peak


def _fmt_time(t):
    return "-" if t is None else (f"{t * 1e3:9.3f} ms")


def _fmt_mem(b):
    return "-" if b is None else f"{b / 2**20:9.1f} MiB"


def layer_cases(device, dtype, size):
    """Callables per (layer, implementation) for forward and forward+backward."""
    from pacup.ops import functional as PF
    from pacup.ops import gpu
    from pacup.ops import reference as R
    from pacup.ops.triton import ops as T

    h, w = size
    gen = torch.Generator().manual_seed(0)

    def rnd(*shape, scale=1.0):
        return (torch.randn(*shape, generator=gen) * scale).to(device=device, dtype=dtype)

    f = rnd(1, 16, h, w)
    inputs = {
        "conv": (rnd(1, 32, h, w), rnd(32, 32, 5, 5, scale=0.03), rnd(32)),
        "transposed": (rnd(1, 32, h // 2, w // 2), rnd(32, 32, 5, 5, scale=0.03), rnd(32)),
    }
    impls = {
        "conv": {
            "fused": lambda x, f, w, b: T.pac_conv2d(x, f, w, b, padding=2),
            "pytorch": lambda x, f, w, b: PF.pac_conv2d(x, f, w, b, padding=2),
            "reference": lambda x, f, w, b: R.pac_conv2d(x, f, w, b, padding=2),
            "nn.Conv2d": lambda x, f, w, b: F.conv2d(x, w, b, padding=2),
        },
        "transposed": {
            "fused": lambda x, f, w, b: T.pac_conv_transpose2d(x, f, w, b, 2, 2, 1),
            "pytorch": lambda x, f, w, b: PF.pac_conv_transpose2d(x, f, w, b, 2, 2, 1),
            "reference": lambda x, f, w, b: R.pac_conv_transpose2d(x, f, w, b, 2, 2, 1),
            "nn.ConvTranspose2d": lambda x, f, w, b: F.conv_transpose2d(x, w, b, 2, 2, 1),
        },
    }
    for layer, (x, wt, b) in inputs.items():
        for name, impl in impls[layer].items():
            # The PyTorch fast path must not hand CUDA calls to the fused kernels.
            ctx = gpu.disabled if name == "pytorch" else contextlib.nullcontext

            def forward(impl=impl, x=x, wt=wt, b=b, ctx=ctx):
                with torch.no_grad(), ctx():
                    impl(x, f, wt, b)

            leaves = [t.detach().clone().requires_grad_() for t in (x, f, wt, b)]

            def train(impl=impl, leaves=leaves, ctx=ctx):
                with ctx():
                    out = impl(*leaves)
                    out.backward(torch.ones_like(out))
                for t in leaves:
                    t.grad = None

            yield layer, name, forward, train


def run_layers(device, dtypes, size, reps, warmup):
    h, w = size
    for dtype in dtypes:
        print(f"\nPAC layers, batch 1, 32->32, k=5, 16 guide channels, output {h}x{w}, {dtype}"
              + (" (TF32 matmuls as cuDNN: torch.backends.cudnn.allow_tf32="
                 f"{torch.backends.cudnn.allow_tf32})" if dtype == torch.float32 and device.type == "cuda" else ""))
        print(f"{'layer':<11} {'implementation':<19} {'fwd time':>12} {'fwd peak':>13} {'fwd+bwd time':>13} "
              f"{'fwd+bwd peak':>13} {'fwd / floor':>11}")
        floor = {}
        rows = []
        for layer, name, forward, train in layer_cases(device, dtype, size):
            res = []
            for fn in (forward, train):
                try:
                    res.append(measure(fn, device, reps, warmup))
                except torch.OutOfMemoryError:
                    res.append((None, None))
                    torch.cuda.empty_cache()
            if name.startswith("nn."):
                floor[layer] = res[0][0]
            rows.append((layer, name, res))
        for layer, name, ((tf, mf), (tb, mb)) in rows:
            ratio = "-" if tf is None or not floor.get(layer) else f"{tf / floor[layer]:10.2f}x"
            print(f"{layer:<11} {name:<19} {_fmt_time(tf):>12} {_fmt_mem(mf):>13} {_fmt_time(tb):>13} "
                  f"{_fmt_mem(mb):>13} {ratio:>11}")


def run_network(device, sizes, reps, warmup, dtype):
    try:
        from pacup.models import PacJointUpsample
    except ImportError as exc:
        print(f"\nnetwork: skipped (pacup.models not importable: {exc})")
        return
    from pacup.ops import gpu

    torch.manual_seed(0)
    model = PacJointUpsample(8).to(device=device, dtype=dtype).eval()
    print(f"\nPacJointUpsample(8) (depth, random weights), inference, batch 1, {dtype}")
    print(f"{'output':<12} {'implementation':<16} {'time':>12} {'peak':>13}")
    for h, w in sizes:
        low = torch.rand(1, 1, h // 8, w // 8, device=device, dtype=dtype)
        guide = torch.rand(1, 3, h, w, device=device, dtype=dtype)
        results = {}
        for name, ctx in (("fused", contextlib.nullcontext), ("pytorch", gpu.disabled)):
            def forward(ctx=ctx):
                with torch.no_grad(), ctx():
                    model(low, guide)

            try:
                results[name] = measure(forward, device, reps, warmup)
            except torch.OutOfMemoryError:
                results[name] = (None, None)
                torch.cuda.empty_cache()
            t, m = results[name]
            print(f"{f'{w}x{h}':<12} {name:<16} {_fmt_time(t):>12} {_fmt_mem(m):>13}")
        tf, tp = results["fused"][0], results["pytorch"][0]
        if tf and tp:
            print(f"{'':<12} {'speed-up':<16} {tp / tf:11.2f}x")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dtype", nargs="+", default=["float16", "float32"],
                        choices=["float16", "bfloat16", "float32"])
    parser.add_argument("--reps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--no-network", action="store_true", help="skip the full-network timings")
    parser.add_argument("--cpu-smoke", action="store_true",
                        help="toy sizes on the CPU through Triton's interpreter (checks the script only)")
    args = parser.parse_args(argv)

    try:
        import triton  # noqa: F401
    except ImportError:
        print("triton is not installed: the fused kernels cannot run (pip install triton)")
        return 0
    from pacup.ops import gpu

    if args.cpu_smoke:
        device, size, net_sizes, reps, warmup = torch.device("cpu"), (8, 10), [(16, 24)], 1, 0
        print("CPU smoke run (fused layers through Triton's interpreter; the network's CPU calls never "
              "dispatch, so both of its rows run the PyTorch path): the numbers mean nothing")
    else:
        if not torch.cuda.is_available():
            print("no CUDA GPU present: nothing to measure (the fused kernels need one)")
            return 0
        device, size, net_sizes, reps, warmup = torch.device("cuda"), (480, 640), [(480, 640), (2160, 3840)], \
            args.reps, args.warmup
        print(f"device: {torch.cuda.get_device_name(device)}, torch {torch.__version__}, "
              f"triton {triton.__version__}, fused kernels available: {gpu.available(device)}")
    run_layers(device, [getattr(torch, d) for d in args.dtype], size, reps, warmup)
    if not args.no_network:
        run_network(device, net_sizes, reps, warmup, torch.float16 if device.type == "cuda" else torch.float32)
    return 0


if __name__ == "__main__":
    sys.exit(main())
