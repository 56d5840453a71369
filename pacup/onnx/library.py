"""Where the native custom-op library is, and what it reports about itself."""

from __future__ import annotations

import ctypes
import os
import sys
from pathlib import Path

__all__ = ["library_path", "native_info"]

_ENV = "PACUP_ORT_LIBRARY"


def _library_name() -> str:
    if sys.platform == "win32":
        return "pacup_ort.dll"
    if sys.platform == "darwin":
        return "libpacup_ort.dylib"
    return "libpacup_ort.so"


def library_path() -> str | None:
    """Path of the ONNX Runtime custom-op library built with pacup, or None.

    Pass it to ``onnxruntime.SessionOptions.register_custom_ops_library``. The environment
    variable ``PACUP_ORT_LIBRARY`` overrides the search: a path selects that file, an empty
    value or ``none`` disables the library (the models then run their fallback bodies).

    Example:
        >>> import onnxruntime as ort
        >>> so = ort.SessionOptions()
        >>> if library_path():
        ...     so.register_custom_ops_library(library_path())
    """
    env = os.environ.get(_ENV)
    if env is not None:
        if env.strip().lower() in ("", "none", "0"):
            return None
        return str(Path(env).resolve()) if Path(env).is_file() else None
    p = Path(__file__).resolve().parent / "_native" / _library_name()
    return str(p) if p.is_file() else None


def _lib(path: str | None = None):
    path = path or library_path()
    if path is None:
        return None
    lib = ctypes.CDLL(path)  # the same handle ONNX Runtime got if it loaded this file
    lib.pacup_ort_compute_count.restype = ctypes.c_ulonglong
    lib.pacup_ort_compute_count.argtypes = [ctypes.c_int]
    lib.pacup_ort_api_version.restype = ctypes.c_uint
    lib.pacup_ort_has_cuda.restype = ctypes.c_int
    return lib


def native_info(path: str | None = None) -> dict | None:
    """What the library says about itself, or None without a library.

    Keys: ``path``; ``cuda`` (built with the CUDA kernel); ``api_version`` (ONNX Runtime C API
    version negotiated at the last registration, 0 before any); ``cpu_computes`` and
    ``cuda_computes`` (kernel runs in this process so far).
    """
    lib = _lib(path)
    if lib is None:
        return None
    return {
        "path": path or library_path(),
        "cuda": bool(lib.pacup_ort_has_cuda()),
        "api_version": int(lib.pacup_ort_api_version()),
        "cpu_computes": int(lib.pacup_ort_compute_count(0)),
        "cuda_computes": int(lib.pacup_ort_compute_count(1)),
    }
