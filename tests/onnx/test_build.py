"""The native build: library present, CUDA source compiles (compile only), and pacup imports
without the optional ONNX packages."""

import ctypes
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pacup.onnx import library_path, native_info

ROOT = Path(__file__).resolve().parents[2]
CSRC = ROOT / "csrc"
CXX = os.environ.get("CXX") or shutil.which("c++") or shutil.which("g++")


@pytest.mark.skipif(CXX is None or os.environ.get("PACUP_BUILD_NATIVE") == "0", reason="no C++ compiler")
def test_library_is_built_by_the_installation():
    path = library_path()
    assert path is not None, "setup.py did not build pacup/onnx/_native (reinstall: pip install -e .)"
    info = native_info(path)
    assert info["path"] == path and isinstance(info["cuda"], bool)


def test_library_path_can_be_overridden(monkeypatch, tmp_path):
    monkeypatch.setenv("PACUP_ORT_LIBRARY", "none")
    assert library_path() is None and native_info() is None
    monkeypatch.setenv("PACUP_ORT_LIBRARY", str(tmp_path / "missing.so"))
    assert library_path() is None


@pytest.fixture(scope="module")
def cuda_host_check(tmp_path_factory):
    """nvcc builds pac_cuda.cu (device code for sm_80, plus -DPACUP_CUDA_HOST_CHECK, which runs
    the kernels' per-thread bodies in loops on the CPU)."""
    if shutil.which("nvcc") is None:
        pytest.skip("nvcc not found")
    out = tmp_path_factory.mktemp("cuda") / "libpac_cuda_host.so"
    proc = subprocess.run(["nvcc", "-std=c++17", "-O2", "-Xcompiler", "-fPIC,-fvisibility=hidden", "-shared",
                           "-DPACUP_CUDA_HOST_CHECK", "-gencode", "arch=compute_80,code=sm_80",
                           str(CSRC / "pac_cuda.cu"), "-o", str(out)], capture_output=True, text=True)
    return proc, out


def test_cuda_kernel_compiles(cuda_host_check):
    """Compile only: no GPU here to run it (test_cuda.py runs it inside ONNX Runtime)."""
    proc, out = cuda_host_check
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert out.stat().st_size > 0


class _Config(ctypes.Structure):
    _fields_ = [(n, ctypes.c_int32) for n in ("transposed", "kh", "kw", "sy", "sx", "py", "px", "dy", "dx", "opy",
                                               "opx", "kernel")] + \
               [("alpha", ctypes.c_float), ("lam", ctypes.c_float), ("asymmetric", ctypes.c_int32),
                ("normalize", ctypes.c_int32)]


class _Shapes(ctypes.Structure):
    _fields_ = [(n, ctypes.c_int64) for n in ("batch", "cin", "h", "w", "cf", "gh", "gw", "cout", "ho", "wo")] + \
               [("shared", ctypes.c_int32)]


class _Args(ctypes.Structure):
    _fields_ = [("cfg", _Config), ("shp", _Shapes)] + [(n, ctypes.c_void_p) for n in
                                                         ("x", "guide", "centre", "weight", "bias", "out")]


@pytest.mark.parametrize("half", [False, True])
def test_cuda_kernel_bodies_match_pytorch_on_the_cpu(cuda_host_check, half):
    """The CUDA file's index arithmetic (taps, phases, padding, normalisation, layouts)
    against the PyTorch implementation, executed on the CPU."""
    import numpy as np
    import torch

    from onnx_testlib import feeds, guide_size, inputs, make_case, torch_reference
    from test_layers import CASES

    proc, path = cuda_host_check
    assert proc.returncode == 0, proc.stderr[-3000:]
    lib = ctypes.CDLL(str(path))
    lib.pacup_cuda_forward_host.restype = ctypes.c_char_p
    lib.pacup_cuda_forward_host.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p]
    dt = np.float16 if half else np.float32
    for spec, cin, cout, cf in CASES:
        weight, bias, smooth = make_case(spec, cin, cout, cf)
        x, g = inputs(spec, 2, cin, cf, 7, 9, seed=30)
        if half:  # compare with the reference on the rounded inputs
            x, g, weight = x.half().double(), g.half().double(), weight.half().double()
            bias = None if bias is None else bias.half().double()
        ref = torch_reference(spec, x, g, weight, bias, smooth).numpy()
        f = feeds(spec, x, g, smooth, dt)
        arrays = {"x": f["X"], "guide": f["Guide"], "centre": f.get("Centre", f["Guide"]),
                  "weight": weight.numpy().astype(dt), "bias": None if bias is None else bias.numpy().astype(dt)}
        out = np.zeros(ref.shape, dt)
        gh, gw = guide_size(spec, 7, 9)
        kh, kw = spec.kernel
        cfg = _Config(int(spec.transposed), kh, kw, *spec.stride, *spec.padding, *spec.dilation, *spec.output_padding,
                      int(spec.kernel_type == "inverse"), spec.alpha, spec.lam, int(spec.asymmetric), spec.normalize)
        shp = _Shapes(2, cin, 7, 9, cf, gh, gw, cin if spec.shared else cout, out.shape[2], out.shape[3], int(spec.shared))
        args = _Args(cfg, shp, *(None if arrays[k] is None else arrays[k].ctypes.data
                                 for k in ("x", "guide", "centre", "weight", "bias")), out.ctypes.data)
        scratch = np.zeros(2 * (kh * kw + 1) * out.shape[2] * out.shape[3] + 256, np.float32)
        assert lib.pacup_cuda_forward_host(ctypes.byref(args), int(half), scratch.ctypes.data) is None
        tol = (2e-2 if half else 1e-4) * max(1.0, float(np.abs(ref).max()))
        assert np.abs(out.astype(np.float64) - ref).max() < tol, spec
    del torch


@pytest.mark.skipif(CXX is None, reason="no C++ compiler")
def test_registration_glue_compiles_with_cuda_enabled():
    proc = subprocess.run([CXX, "-std=c++17", "-fsyntax-only", "-Wall", "-Werror", "-Wno-psabi", "-DPACUP_WITH_CUDA=1",
                           str(CSRC / "pac_ort.cc")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_pacup_imports_without_the_onnx_packages():
    code = textwrap.dedent("""
        import sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("onnx", "onnxruntime", "onnxscript"):
                    raise ImportError(f"blocked {name}")
        sys.meta_path.insert(0, Block())
        import pacup, pacup.onnx
        from pacup.onnx import library_path, export_model, OnnxBackend
        library_path()
        for call in (lambda: export_model(None, "x.onnx"), lambda: OnnxBackend("x.onnx")):
            try:
                call()
            except ImportError as exc:
                assert "pacup-upsampling[cpu]" in str(exc), exc
            else:
                raise AssertionError("no ImportError")
        print("ok")
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0 and proc.stdout.strip().endswith("ok"), proc.stderr[-3000:]
