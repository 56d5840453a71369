"""`pacup export-onnx` and `--backend onnx`: the exported file reproduces the PyTorch run."""

from __future__ import annotations

import numpy as np
import pytest
from cli_helpers import FACTOR

from pacup.io import read_depth, read_flow

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")


def test_export_then_run_depth_and_flow_with_onnx_backend(invoke, tmp_path, depth_pair, flow_pair, bicubic_model_file):
    for task, (low, guide), ext, read in (("depth", depth_pair, ".png", read_depth), ("flow", flow_pair, ".flo", read_flow)):
        weights = bicubic_model_file(task)
        onnx_file = tmp_path / f"{task}.onnx"
        res = invoke("export-onnx", "--model", weights, "-o", onnx_file)
        assert res.exit_code == 0, res.output
        assert "max |ORT - PyTorch|" in res.stdout and onnx_file.exists()
        torch_out, onnx_out = tmp_path / f"t{ext}", tmp_path / f"o{ext}"
        assert invoke(task, low, "--guide", guide, "--model", weights, "-o", torch_out).exit_code == 0
        res = invoke(task, low, "--guide", guide, "--backend", "onnx", "--model", onnx_file, "-o", onnx_out)
        assert res.exit_code == 0, res.output
        a, b = read(torch_out)[0], read(onnx_out)[0]
        assert a.shape == b.shape
        # 16-bit PNG depth rounds to whole units; .flo keeps float32.
        assert np.abs(a - b).max() <= (1.0 if task == "depth" else 1e-4)


def test_backend_and_model_must_agree(invoke, depth_pair, tmp_path):
    low, guide = depth_pair
    res = invoke("depth", low, "--guide", guide, "--backend", "onnx", "--random-weights")
    assert res.exit_code == 2 and "--backend onnx needs --model" in res.stderr
    res = invoke("depth", low, "--guide", guide, "--model", tmp_path / "x.onnx")
    assert res.exit_code == 2 and "--backend onnx" in res.stderr


def test_export_needs_weights_or_the_random_flag(invoke, tmp_path):
    res = invoke("export-onnx", "--task", "depth", "--factor", str(FACTOR), "-o", tmp_path / "m.onnx")
    assert res.exit_code == 2 and "--random-weights" in res.stderr
    assert not (tmp_path / "m.onnx").exists()
    res = invoke("export-onnx", "--task", "colour", "--random-weights")
    assert res.exit_code == 2 and "--task" in res.stderr
