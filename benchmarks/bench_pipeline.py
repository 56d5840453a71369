"""End-to-end pipeline speed and peak memory, one process per case. Prints; asserts nothing.

Each case runs ``pacup.upsample_depth`` (or ``upsample_flow``) with the registry's model for
its factor (random weights, ``allow_random=True``, where none is shipped), or with each
``--model`` in turn (times as ratios to the first one's), on a random guide and a smooth
random low-res input with a few holes, in its own process: peak memory is that process's peak resident set (VmHWM),
reset with ``/proc/self/clear_refs`` after the inputs are made and one warm-up call on a
tiny image, so it counts the pipeline's own work plus the already-imported libraries.

    python benchmarks/bench_pipeline.py [--reps 1] [--device cpu] [--threads N] [--tile T]
                                        [--cases 640x480,x16-640x480,3840x2160,flow-1024x440,
                                                 flow-x4-1024x440,flow-x16-1024x448]
                                        [--model depth-x8-lite --model depth-x8]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

CASES = {
    "640x480": dict(task="depth", width=640, height=480, factor=8),
    "3840x2160": dict(task="depth", width=3840, height=2160, factor=8),
    "x16-640x480": dict(task="depth", width=640, height=480, factor=16),
    "flow-1024x440": dict(task="flow", width=1024, height=440, factor=8),
    "flow-x4-1024x440": dict(task="flow", width=1024, height=440, factor=4),
    "flow-x16-1024x448": dict(task="flow", width=1024, height=448, factor=16),
}


def _status_kib(field):
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field):
                return int(line.split()[1])
    return 0


def run_case(name, reps, device, tile, threads, model=None):
    import warnings

    import numpy as np
    import torch

    if threads:
        torch.set_num_threads(threads)
    import pacup
    from pacup.pipeline import _auto_tile, _resolve_device

    warnings.simplefilter("ignore")
    cfg = CASES[name]
    f, W, H = cfg["factor"], cfg["width"], cfg["height"]
    rng = np.random.default_rng(0)
    guide = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    h, w = H // f, W // f
    yy, xx = np.mgrid[0:h, 0:w]
    smooth = 2.0 + np.sin(yy / 7.0) + np.cos(xx / 11.0)
    if cfg["task"] == "depth":
        low = smooth.astype(np.float32)
        low[h // 3 : h // 3 + 5, w // 3 : w // 3 + 5] = 0  # a hole
        fn = pacup.upsample_depth
    else:
        low = np.stack([smooth, -smooth], axis=2).astype(np.float32)
        low[h // 3 : h // 3 + 5, w // 3 : w // 3 + 5] = np.nan
        fn = pacup.upsample_flow
    kwargs = dict(device=device, allow_random=True, tile=tile, model=model)
    # Warm-up on a tiny input: imports, model build, oneDNN primitives.
    fn(low[:8, :8], guide[: 8 * f, : 8 * f], **kwargs)
    dev = _resolve_device(device)
    auto = _auto_tile(h, w, f, 10, 1 if cfg["task"] == "depth" else 2, dev, torch.float32)
    rss_before = _status_kib("VmRSS")
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        out = fn(low, guide, **kwargs)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    peak = _status_kib("VmHWM")
    return dict(
        case=name, model=model or "default", task=cfg["task"], guide=f"{W}x{H}", low=f"{w}x{h}", factor=f,
        tile=tile if tile is not None else auto, seconds=min(times), peak_mib=peak / 1024,
        base_mib=rss_before / 1024, out_shape=list(out.shape), threads=torch.get_num_threads(),
    )


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--tile", type=int, default=None, help="low-res tile size (default: automatic)")
    ap.add_argument("--threads", type=int, default=0, help="torch intra-op threads (default: torch's choice)")
    ap.add_argument("--cases", default="640x480,3840x2160", help=f"comma-separated, from {sorted(CASES)}")
    ap.add_argument("--model", action="append", default=None,
                    help="registry name or .safetensors (repeatable; default: the registry's model per case)")
    ap.add_argument("--case", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.case:
        model = args.model[0] if args.model else None
        print(json.dumps(run_case(args.case, args.reps, args.device, args.tile, args.threads, model)))
        return
    rows = []
    for name in args.cases.split(","):
        for model in args.model or [None]:
            cmd = [sys.executable, __file__, "--case", name, "--reps", str(args.reps), "--device", args.device,
                   "--threads", str(args.threads)]
            if args.tile is not None:
                cmd += ["--tile", str(args.tile)]
            if model is not None:
                cmd += ["--model", model]
            res = subprocess.run(cmd, capture_output=True, text=True)
            if res.returncode != 0:
                print(f"{name} {model or ''}: failed\n{res.stderr}", file=sys.stderr)
                continue
            rows.append(json.loads(res.stdout.strip().splitlines()[-1]))
    print(f"pacup pipeline, device={args.device}, best of {args.reps}")
    mw = max([5] + [len(r["model"]) for r in rows])  # whole model names: paths tell runs apart
    print(f"{'case':<17} {'model':<{mw}} {'task':<6} {'guide':<10} {'low':<9} {'x':>3} {'tile':>5} {'seconds':>8} "
          f"{'vs first':>9} {'peak MiB':>9} {'(base MiB)':>10}")
    for r in rows:
        first = next(x for x in rows if x["case"] == r["case"])
        print(f"{r['case']:<17} {r['model']:<{mw}} {r['task']:<6} {r['guide']:<10} {r['low']:<9} {r['factor']:>3} "
              f"{r['tile']:>5} {r['seconds']:>8.2f} {r['seconds'] / first['seconds']:>8.2f}x {r['peak_mib']:>9.0f} "
              f"{r['base_mib']:>10.0f}")
    if rows:
        print(f"torch threads: {rows[0]['threads']}; peak = process VmHWM after a reset, base = RSS before the run")


if __name__ == "__main__":
    main()
