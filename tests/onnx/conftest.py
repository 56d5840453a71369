"""The ONNX tests need onnx and onnxruntime (the optional [cpu] / [gpu] extras)."""

import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from pacup.onnx import library_path  # noqa: E402


@pytest.fixture(scope="session")
def lib():
    """Path of the native custom-op library (tests needing it skip without it; test_build
    checks that it was built wherever a C++ compiler is available)."""
    path = library_path()
    if path is None:
        pytest.skip("the native custom-op library is not built (see setup.py)")
    return path
