"""The native build: library present, CUDA source compiles (compile only), and pacup imports
without the optional ONNX packages."""

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


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc not found")
def test_cuda_kernel_compiles(tmp_path):
    """Compile only: this checks the CUDA source, not its results (test_cuda.py runs it)."""
    out = tmp_path / "pac_cuda.o"
    proc = subprocess.run(["nvcc", "-std=c++17", "-O3", "-Xcompiler", "-fPIC", "-gencode", "arch=compute_80,code=sm_80",
                           "-c", str(CSRC / "pac_cuda.cu"), "-o", str(out)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert out.stat().st_size > 0


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
