"""Helpers shared by the ONNX tests (single-layer models, PyTorch references)."""

import numpy as np
import torch
from onnx import helper, numpy_helper

from pacup.onnx import _graph as G
from pacup.onnx import native_info
from pacup.ops import functional as PF
from pacup.ops._common import parse_kernel_type, smooth_centre, smooth_kernel_init


def single_layer_model(spec: G.PacSpec, weight: np.ndarray, bias, cin: int, cf: int, with_function=True):
    """A model with one pacup:: node (inputs X, Guide[, Centre]) and, optionally, its fallback."""
    inputs = ["X", "Guide", "W", "B" if bias is not None else "", "Centre" if spec.has_centre else ""]
    while inputs[-1] == "":
        inputs.pop()
    node = helper.make_node(spec.op, inputs, ["Y"], domain=G.DOMAIN, **spec.attributes())
    inits = [numpy_helper.from_array(weight, "W")]
    if bias is not None:
        inits.append(numpy_helper.from_array(bias, "B"))
    vi = [helper.make_tensor_value_info("X", spec.dtype, ["b", cin, "h", "w"]),
          helper.make_tensor_value_info("Guide", spec.dtype, ["b", cf, "gh", "gw"])]
    if spec.has_centre:
        vi.append(helper.make_tensor_value_info("Centre", spec.dtype, ["b", cf, "gh", "gw"]))
    graph = helper.make_graph([node], "pac", vi, [helper.make_tensor_value_info("Y", spec.dtype, ["b", "c", "ho", "wo"])],
                              initializer=inits)
    functions = [G.build_function(spec, 18)] if with_function else []
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18), helper.make_opsetid(G.DOMAIN, 1)],
                              functions=functions)
    model.ir_version = 9
    return model.SerializeToString()


def torch_reference(spec: G.PacSpec, x, guide, weight, bias, smooth=None):
    """The PyTorch fast path for the configuration of ``spec`` (float64 for a tight reference)."""
    kw = dict(kernel_type="gaussian", normalize_kernel=spec.normalize == 2, normalize_mask=spec.normalize >= 1,
              smooth_weight=smooth)
    if spec.kernel_type == "inverse":
        kw["kernel_type"] = f"inv_{spec.alpha}_{spec.lam}" + ("_asym" if spec.asymmetric else "")
        kw.update(inv_alpha=torch.tensor([spec.alpha], dtype=x.dtype), inv_lambda=torch.tensor([spec.lam], dtype=x.dtype))
        assert parse_kernel_type(kw["kernel_type"]).asymmetric == spec.asymmetric
    with torch.no_grad():
        if spec.transposed:
            return PF.pac_conv_transpose2d(x, guide, weight, bias, spec.stride, spec.padding, spec.output_padding,
                                           spec.dilation, **kw)
        return PF.pac_conv2d(x, guide, weight, bias, spec.stride, spec.padding, spec.dilation, **kw)


def guide_size(spec: G.PacSpec, h: int, w: int):
    if not spec.transposed:
        return h, w
    return tuple((n - 1) * spec.stride[i] - 2 * spec.padding[i] + spec.dilation[i] * (spec.kernel[i] - 1)
                 + spec.output_padding[i] + 1 for i, n in enumerate((h, w)))


def make_case(spec: G.PacSpec, cin: int, cout: int, cf: int, seed=0):
    """Random weights (PyTorch layout for the op) and a smoothing filter when the spec has a centre."""
    gen = torch.Generator().manual_seed(seed)
    kh, kw = spec.kernel
    shape = (1, 1, kh, kw) if spec.shared else ((cin, cout, kh, kw) if spec.transposed else (cout, cin, kh, kw))
    weight = torch.randn(*shape, generator=gen, dtype=torch.float64) / (kh * kw) ** 0.5
    bias = torch.randn(cin if spec.shared else cout, generator=gen, dtype=torch.float64) if spec.has_bias else None
    smooth = smooth_kernel_init("gaussian", 3).double() if spec.has_centre else None
    return weight, bias, smooth


def inputs(spec, b, cin, cf, h, w, seed):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(b, cin, h, w, generator=gen, dtype=torch.float64)
    gh, gw = guide_size(spec, h, w)
    # Guide values spread enough that K varies between about 0 and 1.
    g = torch.randn(b, cf, gh, gw, generator=gen, dtype=torch.float64) * 0.7
    return x, g


def feeds(spec, x, g, smooth, dtype=np.float32):
    f = {"X": x.numpy().astype(dtype), "Guide": g.numpy().astype(dtype)}
    if spec.has_centre:
        f["Centre"] = smooth_centre(g, smooth).numpy().astype(dtype)
    return f


def computes(lib_path, device=0):
    return native_info(lib_path)["cpu_computes" if device == 0 else "cuda_computes"]
