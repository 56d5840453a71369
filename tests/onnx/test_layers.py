"""One PAC layer per model: the standard-operator fallback bodies and the native CPU kernel
against the PyTorch implementation, over the configurations the custom op covers."""

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto

from pacup.onnx import _graph as G
from pacup.onnx import make_session

from onnx_testlib import computes, feeds, inputs, make_case, single_layer_model, torch_reference

S = G.PacSpec
# The decoder layer of PacJointUpsample (32 channels there).
JOINT = (S(G.CONV_T, (5, 5), stride=(2, 2), padding=(2, 2), output_padding=(1, 1)), 8, 8, 4)
CASES = [
    # (spec, cin, cout, cf)
    (S(G.CONV, (5, 5), padding=(2, 2)), 4, 6, 3),
    (S(G.CONV, (3, 3), stride=(2, 2), padding=(1, 1), normalize=2, has_bias=False), 3, 2, 2),
    (S(G.CONV, (3, 5), padding=(2, 4), dilation=(2, 2), kernel_type="inverse", alpha=0.1, lam=0.5, normalize=1), 2, 3, 4),
    (S(G.CONV, (5, 5), padding=(2, 2), shared=True, normalize=2, has_bias=False), 3, 3, 3),  # PacPool2d
    (S(G.CONV, (3, 3), padding=(1, 1), kernel_type="inverse", alpha=0.2, lam=-1.0, asymmetric=True,
       has_centre=True), 3, 4, 2),
    (S(G.CONV, (3, 3), padding=(1, 1), normalize=2, has_bias=False, has_centre=True), 2, 3, 2),  # no B, Centre
    JOINT,
    (S(G.CONV_T, (5, 5), stride=(2, 2), padding=(2, 2), output_padding=(1, 1), normalize=2, has_centre=True), 3, 5, 2),
    (S(G.CONV_T, (3, 3), stride=(3, 3), padding=(1, 1), output_padding=(2, 2), normalize=1, has_bias=False), 2, 3, 3),
    (S(G.CONV_T, (5, 3), stride=(3, 3), padding=(1, 0), dilation=(1, 2), output_padding=(2, 1), kernel_type="inverse", alpha=0.1,
       lam=0.5), 4, 2, 1),
    (S(G.CONV_T, (3, 3), stride=(2, 2), padding=(1, 1), output_padding=(1, 1), shared=True, has_bias=False,
       normalize=2), 3, 3, 2),
    (S(G.CONV_T, (3, 3), stride=(1, 1), padding=(0, 0), kernel_type="inverse", alpha=0.5, lam=1.0,
       asymmetric=True), 3, 2, 2),
]
SIZES = [(1, 7, 9), (2, 12, 5), (1, 16, 21)]  # (batch, h, w): one session, several shapes


def _ids(case):
    spec, cin, cout, cf = case
    return f"{spec.op}-k{spec.kernel[0]}x{spec.kernel[1]}-s{spec.stride[0]}-{spec.kernel_type}-n{spec.normalize}" + (
        "-shared" if spec.shared else "") + ("-centre" if spec.has_centre else "")


def _run(case, library):
    spec, cin, cout, cf = case
    weight, bias, smooth = make_case(spec, cin, cout, cf)
    model = single_layer_model(spec, weight.float().numpy(), None if bias is None else bias.float().numpy(), cin, cf)
    sess = make_session(model, library=library)
    worst = 0.0
    for i, (b, h, w) in enumerate(SIZES):
        x, g = inputs(spec, b, cin, cf, h, w, seed=10 + i)
        ref = torch_reference(spec, x, g, weight, bias, smooth).numpy()
        assert np.abs(ref).max() > 0.1  # a meaningful output, not all zeros
        out = sess.run(None, feeds(spec, x, g, smooth))[0]
        assert out.shape == ref.shape
        # float32 against a float64 reference: 1e-4 of the output's scale (inverse kernels
        # with a negative power reach K = 100 at the window centre).
        worst = max(worst, float(np.abs(out - ref).max()) / max(1.0, float(np.abs(ref).max())))
    return worst


@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_fallback_bodies_match_pytorch(case):
    assert _run(case, library=None) < 1e-4


@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_native_cpu_kernel_matches_pytorch(case, lib):
    before = computes(lib)
    assert _run(case, library=lib) < 1e-4
    assert computes(lib) - before == len(SIZES)  # the native kernel, not the fallback, ran


def test_native_kernel_is_used_without_fallback_function(lib):
    """Without a function body in the file, only the registered kernel can run the node."""
    spec, cin, cout, cf = JOINT
    weight, bias, _ = make_case(spec, cin, cout, cf)
    model = single_layer_model(spec, weight.float().numpy(), bias.float().numpy(), cin, cf, with_function=False)
    x, g = inputs(spec, 1, cin, cf, 6, 7, seed=3)
    out = make_session(model, library=lib).run(None, feeds(spec, x, g, None))[0]
    np.testing.assert_allclose(out, torch_reference(spec, x, g, weight, bias).numpy(), atol=1e-4)
    with pytest.raises(Exception, match="PacConvTranspose2d"):
        make_session(model, library=None)


def test_native_kernel_threads_agree(lib):
    """ORT's intra-op pool splits rows across threads: results are identical to one thread."""
    spec, cin, cout, cf = JOINT
    weight, bias, _ = make_case(spec, cin, cout, cf)
    model = single_layer_model(spec, weight.float().numpy(), bias.float().numpy(), cin, cf)
    x, g = inputs(spec, 2, cin, cf, 40, 33, seed=4)
    f = feeds(spec, x, g, None)
    one = make_session(model, library=lib, threads=1).run(None, f)[0]
    four = make_session(model, library=lib, threads=4).run(None, f)[0]
    np.testing.assert_array_equal(one, four)


def test_native_float16(lib):
    spec, cin, cout, cf = JOINT
    spec = G.PacSpec(**{**spec.__dict__, "dtype": TensorProto.FLOAT16})
    weight, bias, _ = make_case(spec, cin, cout, cf)
    model = single_layer_model(spec, weight.half().numpy(), bias.half().numpy(), cin, cf)
    x, g = inputs(spec, 1, cin, cf, 9, 11, seed=5)
    ref = torch_reference(spec, x.half().double(), g.half().double(), weight.half().double(), bias.half().double())
    before = computes(lib)
    for library in (lib, None):
        out = make_session(model, library=library).run(None, feeds(spec, x, g, None, np.float16))[0]
        assert out.dtype == np.float16
        np.testing.assert_allclose(out.astype(np.float64), ref.numpy(), atol=2e-2, rtol=1e-2)
    assert computes(lib) == before + 1


def test_native_kernel_rejects_a_guide_of_the_wrong_size(lib):
    spec, cin, cout, cf = JOINT
    weight, bias, _ = make_case(spec, cin, cout, cf)
    sess = make_session(single_layer_model(spec, weight.float().numpy(), bias.float().numpy(), cin, cf), library=lib)
    x = np.zeros((1, cin, 6, 6), np.float32)
    with pytest.raises(Exception, match=r"Guide must have the output size \(12, 12\)"):
        sess.run(None, {"X": x, "Guide": np.zeros((1, cf, 12, 11), np.float32)})


def test_unsupported_configurations_are_refused():
    spec = G.PacSpec(G.CONV_T, (1, 1), stride=(2, 2))
    assert "no tap" in spec.unsupported()
    with pytest.raises(ValueError, match="no standard-operator graph"):
        G.build_function(spec, 18)
    assert "strides" in G.PacSpec(G.CONV_T, (3, 3), stride=(2, 1)).unsupported()


def test_registration_negotiates_the_api_version(lib):
    make_session(single_layer_model(CASES[0][0], np.zeros((6, 4, 5, 5), np.float32), np.zeros(6, np.float32), 4, 3),
                 library=lib)
    from pacup.onnx import native_info

    info = native_info(lib)
    major, minor = (int(v) for v in ort.__version__.split(".")[:2])
    assert info["api_version"] == min(minor, 30) and info["api_version"] >= 17
