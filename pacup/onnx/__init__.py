"""ONNX export and ONNX Runtime execution of pacup models.

- :func:`export_model` writes a model with dynamic height and width, in ``"portable"``
  form (standard operators) or ``"custom"`` form (``pacup::PacConv2d`` /
  ``pacup::PacConvTranspose2d`` nodes, each with a standard-operator fallback function),
  and checks that ONNX Runtime reproduces PyTorch.
- :class:`OnnxBackend` runs such a file in ONNX Runtime (CUDA provider when available)
  with the native custom-op library registered when present: no PyTorch needed.
- :func:`library_path` locates that library (built from ``csrc/`` at installation) for
  ``SessionOptions.register_custom_ops_library``.

Optional dependencies: ``pip install 'pacup-upsampling[cpu]'`` (onnxruntime) or ``[gpu]``
(onnxruntime-gpu), never both. Importing this package needs neither; the functions that
need them say so.
"""

from __future__ import annotations

from .library import library_path, native_info

__all__ = ["export_model", "check_export", "ExportReport", "OnnxExportError", "OnnxBackend", "make_session",
           "library_path", "native_info"]


def __getattr__(name):
    # export needs torch and onnx, the runtime needs onnxruntime: import them on first use.
    if name in ("export_model", "check_export", "ExportReport", "OnnxExportError"):
        from . import export

        return getattr(export, name)
    if name in ("OnnxBackend", "make_session"):
        from . import runtime

        return getattr(runtime, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
