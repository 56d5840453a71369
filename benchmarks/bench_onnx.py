"""PyTorch vs ONNX Runtime (portable graph) vs ONNX Runtime (pacup custom ops): time and
peak memory of one PacJointUpsample forward pass.

    python benchmarks/bench_onnx.py                      # x8, 480x640 output, CPU (+ GPU if any)
    python benchmarks/bench_onnx.py --factor 4 --size 240 320 --repeat 5 --device cpu

Each backend runs in its own process (ONNX Runtime ones with plain onnxruntime, without
importing PyTorch or pacup), so peak memory is that process's own: ``peak`` is the peak resident set size during the timed runs,
``work`` the part of it above the resident size after the model was loaded (buffers of the
forward pass). GPU rows give device memory instead (PyTorch: max allocated; ONNX Runtime:
drop of free device memory). Weights are random: speed and memory do not depend on them.
The table compares backends measured side by side in one run; it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_rss_mb() -> float:
    # VmHWM, not getrusage's ru_maxrss: the latter carries the parent's peak over exec.
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError("no VmHWM in /proc/self/status")


def _inputs(factor, h, w):
    import numpy as np

    rng = np.random.default_rng(0)
    low = rng.random((1, 1, h // factor, w // factor), dtype=np.float32)
    guide = rng.random((1, 3, h, w), dtype=np.float32)
    return low, guide


def _worker(args) -> dict:
    """Runs one backend; prints a JSON line with its timings, memory and output checksum."""
    import numpy as np

    low, guide = _inputs(args.factor, *args.size)
    gpu = args.device == "cuda"
    if args.backend == "pytorch":
        import torch

        from pacup.models import PacJointUpsample

        torch.manual_seed(0)
        dev = torch.device(args.device)
        net = PacJointUpsample(args.factor).eval().to(dev)
        net.load_state_dict(torch.load(args.weights, map_location=dev))
        lo, gu = torch.from_numpy(low).to(dev), torch.from_numpy(guide).to(dev)

        def run():
            with torch.inference_mode():
                out = net(lo, gu)
            if gpu:
                torch.cuda.synchronize()
            return out.float().cpu().numpy()
    else:
        # Plain onnxruntime, as a deployment without PyTorch would run it (pacup itself
        # imports torch, so it is not imported here).
        import onnxruntime as ort

        so = ort.SessionOptions()
        if args.backend == "ort-custom":
            if not args.library:
                raise SystemExit("the custom-op library is not available")
            so.register_custom_ops_library(args.library)
        providers = (["CUDAExecutionProvider", "CPUExecutionProvider"] if gpu else ["CPUExecutionProvider"])
        sess = ort.InferenceSession(args.model, so, providers=providers)
        names = [i.name for i in sess.get_inputs()]
        if gpu:
            import torch  # only for the device-memory query

            free0 = torch.cuda.mem_get_info()[0]

        def run():
            return sess.run(None, {names[0]: low, names[1]: guide})[0]

    base = _rss_mb()
    if gpu and args.backend == "pytorch":
        torch.cuda.reset_peak_memory_stats()
    out = run()  # warm-up (allocations, kernel selection)
    times = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        out = run()
        times.append(time.perf_counter() - t0)
    res = {"backend": args.backend, "device": args.device, "ms": 1000 * sorted(times)[len(times) // 2],
           "ms_min": 1000 * min(times), "checksum": float(np.abs(out).mean()), "out": out.ravel()[::97].tolist()}
    if gpu:
        if args.backend == "pytorch":
            res["mem_mb"] = torch.cuda.max_memory_allocated() / 2**20
        else:
            res["mem_mb"] = (free0 - torch.cuda.mem_get_info()[0]) / 2**20
    else:
        res["mem_mb"] = _peak_rss_mb()
        res["work_mb"] = _peak_rss_mb() - base
    if args.backend == "ort-custom":
        import ctypes

        lib = ctypes.CDLL(args.library)
        lib.pacup_ort_compute_count.restype = ctypes.c_ulonglong
        res["native_runs"] = int(lib.pacup_ort_compute_count(1 if gpu else 0))
        if res["native_runs"] == 0:
            raise SystemExit("the native kernel did not run")
    return res


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--factor", type=int, default=8)
    p.add_argument("--size", type=int, nargs=2, default=(480, 640), metavar=("H", "W"), help="output size")
    p.add_argument("--repeat", type=int, default=3, help="timed runs per backend (median reported)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--keep", default=None, help="directory for the exported models (default: a temp dir)")
    # worker mode (internal)
    p.add_argument("--backend", default=None, help=argparse.SUPPRESS)
    p.add_argument("--model", default=None, help=argparse.SUPPRESS)
    p.add_argument("--weights", default=None, help=argparse.SUPPRESS)
    p.add_argument("--library", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.backend:
        print(json.dumps(_worker(args)))
        return

    import numpy as np
    import onnxruntime as ort
    import torch

    from pacup.models import PacJointUpsample
    from pacup.onnx import export_model, library_path

    devices = ["cpu"]
    if args.device in ("auto", "cuda") and torch.cuda.is_available() and \
            "CUDAExecutionProvider" in ort.get_available_providers():
        devices.append("cuda")
    if args.device == "cuda":
        devices = [d for d in devices if d == "cuda"] or devices
    workdir = args.keep or tempfile.mkdtemp(prefix="pacup_bench_onnx_")
    os.makedirs(workdir, exist_ok=True)
    torch.manual_seed(0)
    net = PacJointUpsample(args.factor).eval()
    weights = os.path.join(workdir, "weights.pt")
    torch.save(net.state_dict(), weights)
    models = {}
    for mode in ("portable", "custom"):
        path = os.path.join(workdir, f"pac_x{args.factor}_{mode}.onnx")
        t0 = time.perf_counter()
        report = export_model(net, path, mode=mode)
        models[mode] = path
        print(f"exported {mode}: {time.perf_counter() - t0:.1f} s, check max diff {report.max_abs_diff:.2g}, "
              f"{sum(report.op_histogram.values())} nodes", flush=True)
    h, w = args.size
    print(f"\nPacJointUpsample x{args.factor}, output {h}x{w} (input {h // args.factor}x{w // args.factor}), "
          f"median of {args.repeat} runs after one warm-up; {os.cpu_count()} CPU threads visible; "
          f"torch {torch.__version__}, onnxruntime {ort.__version__}; native library: {library_path() or 'none'}\n")

    rows = []
    for dev in devices:
        for backend, model in (("pytorch", None), ("ort-portable", models["portable"]), ("ort-custom", models["custom"])):
            cmd = [sys.executable, __file__, "--backend", backend, "--device", dev, "--factor", str(args.factor),
                   "--size", str(h), str(w), "--repeat", str(args.repeat), "--weights", weights]
            if model:
                cmd += ["--model", model]
            if library_path():
                cmd += ["--library", library_path()]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                print(f"{backend} on {dev} failed:\n{proc.stderr[-2000:]}", file=sys.stderr)
                continue
            rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))

    ref = {r["device"]: np.array(r["out"]) for r in rows if r["backend"] == "pytorch"}
    print(f"| device | backend | time (ms) | vs PyTorch | peak memory (MB) | forward-pass memory (MB) | max diff vs PyTorch |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for r in rows:
        base = next((x["ms"] for x in rows if x["device"] == r["device"] and x["backend"] == "pytorch"), None)
        diff = float(np.abs(np.array(r["out"]) - ref[r["device"]]).max()) if r["device"] in ref else float("nan")
        speed = f"{base / r['ms']:.2f}x" if base else "-"
        work = f"{r['work_mb']:.0f}" if "work_mb" in r else "-"
        print(f"| {r['device']} | {r['backend']} | {r['ms']:.0f} | {speed} | {r['mem_mb']:.0f} | {work} | {diff:.1e} |")
    if not args.keep:
        print(f"\n(models in {workdir})")


if __name__ == "__main__":
    main()
