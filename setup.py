"""What pyproject.toml cannot say: the package list with weights/ mapped to
``pacup._weights``, and the native build of the ONNX Runtime custom-op library
(csrc/ -> pacup/onnx/_native/).

Everything else about the package lives in pyproject.toml. The library is a plain shared
object loaded by ONNX Runtime (``SessionOptions.register_custom_ops_library``), not a Python
extension; it is built here so that ``pip install .`` and ``pip install -e .`` both produce
it:

- the CPU part with the system C++ compiler ($CXX, else ``c++``);
- the CUDA part when ``nvcc`` is found ($CUDA_HOME/bin or PATH), or when PACUP_BUILD_CUDA=1
  asks for it; PACUP_BUILD_CUDA=0 skips it; PACUP_CUDA_ARCHS="75;80;86;89;90" picks GPUs;
- PACUP_BUILD_NATIVE=0 skips the library altogether.

A failed build never fails the installation: pacup then exports and runs the same models
through their standard-operator fallback, and ``pacup.onnx.library_path()`` returns None.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile

from setuptools import Extension, find_namespace_packages, setup
from setuptools.command.build_ext import build_ext

NATIVE = "pacup.onnx._native.pacup_ort"
SOURCES = ["csrc/pac_ort.cc", "csrc/pac_cpu.cc"]
CUDA_SOURCE = "csrc/pac_cuda.cu"
HEADERS = ["csrc/ort_api.h", "csrc/pac_common.h", "csrc/pac_cpu.h", "csrc/pac_cuda.h"]
DEFAULT_ARCHS = "75;80;86;89;90"


def _library_name() -> str:
    if sys.platform == "win32":
        return "pacup_ort.dll"
    if sys.platform == "darwin":
        return "libpacup_ort.dylib"
    return "libpacup_ort.so"


def _warn(msg: str) -> None:
    bar = "=" * 78
    print(f"\n{bar}\nWARNING (pacup native build): {msg}\n{bar}\n", file=sys.stderr, flush=True)


def _run(cmd: list[str]) -> None:
    print(" ".join(cmd), flush=True)
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if proc.stdout:
        print(proc.stdout, flush=True)
    if proc.returncode != 0:
        raise RuntimeError(f"command failed with exit code {proc.returncode}: {cmd[0]}\n{proc.stdout[-3000:]}")


def _atomic_copy(src: str, dst: str) -> None:
    os.makedirs(os.path.dirname(dst) or ".", exist_ok=True)
    tmp = f"{dst}.tmp{os.getpid()}"
    shutil.copyfile(src, tmp)
    shutil.copymode(src, tmp)
    os.replace(tmp, dst)


def _find_nvcc() -> str | None:
    for root in (os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH")):
        if root and os.path.isfile(os.path.join(root, "bin", "nvcc")):
            return os.path.join(root, "bin", "nvcc")
    return shutil.which("nvcc") or (
        "/usr/local/cuda/bin/nvcc" if os.path.isfile("/usr/local/cuda/bin/nvcc") else None
    )


def _cuda_roots(nvcc: str) -> list[str]:
    roots = [os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH"),
             os.path.dirname(os.path.dirname(os.path.realpath(nvcc)))]
    try:  # nvcc may be a wrapper script: ask it where its toolkit is
        out = subprocess.run([nvcc, "--dryrun", "-v", "x.cu"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True, timeout=60).stdout
        roots += [line.split("=", 1)[1].strip() for line in out.splitlines() if line.startswith("#$ TOP=")]
    except (OSError, subprocess.SubprocessError):
        pass
    return [r for r in roots + ["/usr/local/cuda"] if r]


def _cuda_lib_dir(nvcc: str) -> str | None:
    for root in _cuda_roots(nvcc):
        for sub in ("lib64", "lib", os.path.join("targets", "x86_64-linux", "lib"),
                    os.path.join("targets", "sbsa-linux", "lib")):
            d = os.path.join(os.path.realpath(root), sub)
            if os.path.isfile(os.path.join(d, "libcudart_static.a")):
                return d
    return None


def _gencode_flags(nvcc: str) -> list[str]:
    wanted = [a.strip() for a in os.environ.get("PACUP_CUDA_ARCHS", DEFAULT_ARCHS).replace(",", ";").split(";")]
    wanted = [a for a in wanted if a.isdigit()]
    try:
        listed = subprocess.run([nvcc, "--list-gpu-arch"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                text=True, check=True).stdout.split()
        supported = {a.split("_")[-1] for a in listed}
        wanted = [a for a in wanted if a in supported] or sorted(supported, key=int)[-1:]
    except (OSError, subprocess.CalledProcessError):
        pass
    flags = []
    for a in wanted:
        flags += ["-gencode", f"arch=compute_{a},code=sm_{a}"]
    if wanted:  # PTX of the newest architecture for GPUs newer than the list
        flags += ["-gencode", f"arch=compute_{wanted[-1]},code=compute_{wanted[-1]}"]
    return flags


class BuildNative(build_ext):
    """build_ext that builds the custom-op library as a plain shared object, best effort."""

    def get_ext_filename(self, fullname):
        # Called with the dotted name and with its last part alone (distutils' get_ext_fullpath).
        parts = fullname.split(".")
        if fullname == NATIVE or fullname == NATIVE.rsplit(".", 1)[-1]:
            return os.path.join(*parts[:-1], _library_name())
        return super().get_ext_filename(fullname)

    def copy_extensions_to_source(self):
        # In-place / editable builds copy the outputs into the source tree. The library is
        # replaced atomically (a process that has the old one loaded keeps a valid mapping),
        # and one that failed to build is simply absent.
        build_py = self.get_finalized_command("build_py")
        saved = self.extensions
        for ext in saved:
            if ext.name == NATIVE:
                inplace_file, regular_file = self._get_inplace_equivalent(build_py, ext)
                if os.path.exists(regular_file):
                    _atomic_copy(regular_file, inplace_file)
        self.extensions = [e for e in saved if e.name != NATIVE]
        try:
            super().copy_extensions_to_source()
        finally:
            self.extensions = saved

    def build_extension(self, ext):
        if ext.name != NATIVE:
            return super().build_extension(ext)
        target = self.get_ext_fullpath(ext.name)
        if os.path.exists(target):  # never ship a library left over from an earlier build
            os.remove(target)
        if os.environ.get("PACUP_BUILD_NATIVE", "1") == "0":
            _warn("PACUP_BUILD_NATIVE=0: the ONNX Runtime custom-op library is not built; exported 'custom' "
                  "models run through their standard-operator fallback.")
            return
        try:
            self._build_library(target)
        except Exception as exc:  # noqa: BLE001 - the library is optional by design
            _warn(f"could not build the ONNX Runtime custom-op library ({exc}).\n"
                  "pacup installs and works without it: 'custom' ONNX models fall back to standard "
                  "operators. Install a C++17 compiler and reinstall to get the native kernels.")

    def _build_library(self, target: str) -> None:
        if sys.platform == "win32":
            raise RuntimeError("the native build is written for gcc/clang (Linux, macOS)")
        cxx = os.environ.get("CXX") or shutil.which("c++") or shutil.which("g++") or shutil.which("clang++")
        if not cxx:
            raise RuntimeError("no C++ compiler found (set CXX)")
        os.makedirs(os.path.dirname(target), exist_ok=True)
        cxxflags = ["-O3", "-std=c++17", "-fPIC", "-fvisibility=hidden", "-fvisibility-inlines-hidden",
                    "-Wall", "-Wno-psabi"]
        link, defines = [], []
        with tempfile.TemporaryDirectory() as tmp:
            objects = []
            cuda_obj = self._build_cuda(tmp)
            if cuda_obj:
                objects.append(cuda_obj[0])
                defines.append("-DPACUP_WITH_CUDA=1")
                link += ["-L" + cuda_obj[1], "-lcudart_static", "-ldl", "-lpthread"]
                if sys.platform.startswith("linux"):
                    link.append("-lrt")
            for src in SOURCES:
                obj = os.path.join(tmp, os.path.basename(src) + ".o")
                _run([cxx, *cxxflags, *defines, "-c", src, "-o", obj])
                objects.append(obj)
            shared = ["-shared"] + (["-undefined", "dynamic_lookup"] if sys.platform == "darwin" else [])
            tmp_lib = os.path.join(tmp, _library_name())
            _run([cxx, *shared, *objects, "-o", tmp_lib, *link])
            _atomic_copy(tmp_lib, target)
        print(f"pacup: built {target} ({'CPU + CUDA' if defines else 'CPU'} kernels)", flush=True)

    def _build_cuda(self, tmp: str):
        """Returns (object file, cudart library dir), or None when CUDA is not built."""
        want = os.environ.get("PACUP_BUILD_CUDA", "auto").lower()
        if want in ("0", "false", "no", "off"):
            return None
        nvcc = _find_nvcc()
        if not nvcc:
            if want in ("1", "true", "yes", "on"):
                _warn("PACUP_BUILD_CUDA=1 but nvcc was not found (set CUDA_HOME); building the CPU kernels only.")
            return None
        lib_dir = _cuda_lib_dir(nvcc)
        if not lib_dir:
            _warn(f"libcudart_static.a not found next to {nvcc}; building the CPU kernels only.")
            return None
        obj = os.path.join(tmp, "pac_cuda.o")
        try:
            _run([nvcc, "-std=c++17", "-O3", "-Xcompiler", "-fPIC,-fvisibility=hidden", *_gencode_flags(nvcc),
                  "-c", CUDA_SOURCE, "-o", obj])
        except Exception as exc:  # noqa: BLE001
            _warn(f"the CUDA kernel did not compile ({exc}); building the CPU kernels only.")
            return None
        return obj, lib_dir


setup(
    # The top-level weights/ folder ships inside the package as ``pacup._weights`` so that a
    # non-editable install finds the released weights through the import system.
    # (pyproject.toml cannot combine package discovery with one mapped package.)
    packages=find_namespace_packages(include=["pacup", "pacup.*"], exclude=["*.__pycache__"]) + ["pacup._weights"],
    package_dir={"pacup._weights": "weights"},
    ext_modules=[Extension(NATIVE, sources=SOURCES, depends=HEADERS + [CUDA_SOURCE], optional=True)],
    cmdclass={"build_ext": BuildNative},
)
