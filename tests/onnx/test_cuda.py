"""The CUDA kernel of the custom ops, inside ONNX Runtime's CUDA provider. Skipped without a
GPU, onnxruntime-gpu, or a library built with CUDA."""

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto

from pacup.onnx import _graph as G
from pacup.onnx import make_session, native_info

from onnx_testlib import computes, feeds, inputs, make_case, single_layer_model, torch_reference

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module")
def cuda_lib(lib):
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        pytest.skip("onnxruntime has no CUDA provider (install pacup-upsampling[gpu] on a GPU machine)")
    if not native_info(lib)["cuda"]:
        pytest.skip("the custom-op library was built without CUDA (nvcc missing at installation)")
    return lib


CASES = [
    (G.PacSpec(G.CONV_T, (5, 5), stride=(2, 2), padding=(2, 2), output_padding=(1, 1)), 32, 32, 16),
    (G.PacSpec(G.CONV, (3, 3), padding=(1, 1), kernel_type="inverse", alpha=0.1, lam=0.5, normalize=2,
               has_centre=True), 3, 10, 2),
    (G.PacSpec(G.CONV_T, (3, 3), stride=(3, 3), padding=(1, 1), output_padding=(2, 2), shared=True,
               has_bias=False, normalize=1), 3, 3, 3),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c[0].op if isinstance(c, tuple) else str(c))
@pytest.mark.parametrize("half", [False, True])
def test_cuda_kernel_matches_pytorch(case, half, cuda_lib):
    spec, cin, cout, cf = case
    if half:
        spec = G.PacSpec(**{**spec.__dict__, "dtype": TensorProto.FLOAT16})
    dt = np.float16 if half else np.float32
    weight, bias, smooth = make_case(spec, cin, cout, cf)
    model = single_layer_model(spec, weight.numpy().astype(dt), None if bias is None else bias.numpy().astype(dt), cin, cf)
    sess = make_session(model, providers=["CUDAExecutionProvider", "CPUExecutionProvider"], library=cuda_lib)
    before = computes(cuda_lib, device=1)
    for i, (b, h, w) in enumerate([(1, 17, 23), (2, 40, 31)]):
        x, g = inputs(spec, b, cin, cf, h, w, seed=20 + i)
        ref = torch_reference(spec, x, g, weight, bias, smooth).numpy()
        out = sess.run(None, feeds(spec, x, g, smooth, dt))[0].astype(np.float64)
        tol = (3e-2 if half else 1e-4) * max(1.0, np.abs(ref).max())
        assert np.abs(out - ref).max() < tol
    assert computes(cuda_lib, device=1) - before == 2
