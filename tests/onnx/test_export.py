"""export_model and OnnxBackend on real modules: a PacJointUpsample and a hand-built stack
of every PAC layer kind, in both export modes, at sizes other than the export sample."""

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from torch import nn

from pacup.models import PacJointUpsample
from pacup.onnx import OnnxBackend, check_export, export_model, native_info
from pacup.onnx import _graph as G
from pacup.onnx.export import OnnxExportError
from pacup.ops import PacConv2d, PacConvTranspose2d, PacPool2d


class Stack(nn.Module):
    """Every PAC layer kind the custom op covers, plus one call it does not (mask=)."""

    def __init__(self):
        super().__init__()
        self.conv = PacConv2d(2, 4, 5, padding=2, normalize_kernel=True, kernel_type="inv_0.1_0.5",
                              smooth_kernel_type="gaussian_3", bias=False)  # node inputs X, G, W, "", Centre
        self.up = PacConvTranspose2d(4, 4, 5, stride=2, padding=2, output_padding=1)
        self.pool = PacPool2d(3, padding=1)
        self.masked = PacConv2d(4, 2, 1)  # 1x1: tracing the fast path stays cheap

    def forward(self, x, f, g):
        y = torch.relu(self.conv(x, f))
        y = self.pool(self.up(y, g), g)
        out, _ = self.masked(y, g, mask=(g[:, :1] > 0).to(g.dtype))
        return out


def stack_inputs(h, w, seed):
    gen = torch.Generator().manual_seed(seed)
    return (torch.randn(1, 2, h, w, generator=gen), torch.randn(1, 3, h, w, generator=gen),
            torch.randn(1, 3, 2 * h, 2 * w, generator=gen))


@pytest.fixture(scope="module")
def joint(tmp_path_factory):
    torch.manual_seed(0)
    net = PacJointUpsample(4, variant="lite").eval()
    d = tmp_path_factory.mktemp("onnx")
    custom = export_model(net, d / "joint_custom.onnx", mode="custom")
    portable = export_model(net, d / "joint_portable.onnx", mode="portable")
    return net, custom, portable


def _functions_cover_nodes(model):
    fns = {(f.domain, f.name, f.overload) for f in model.functions}
    nodes = [n for n in model.graph.node if n.domain == G.DOMAIN]
    return nodes and all((n.domain, n.op_type, n.overload) in fns for n in nodes)


def test_custom_export_of_the_joint_network(joint):
    net, report, _ = joint
    assert report.passed and report.max_abs_diff < 1e-4
    assert report.custom_nodes == 2 and report.op_histogram["pacup::PacConvTranspose2d"] == 2
    assert not report.traced_layers
    names = [r.name for r in report.runs]
    assert names[-1] == "fallback bodies" and all(r.max_abs_diff < 1e-4 for r in report.runs)
    if native_info() is not None:  # the native kernel was checked and actually ran
        assert names[0] == "native CPU kernel" and report.runs[0].native_computes == 2
    model = onnx.load(report.path)
    assert _functions_cover_nodes(model) and len(model.functions) == 1
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["pacup.factor"] == "4" and int(meta["pacup.receptive_radius"]) == net.receptive_radius
    # Written through a temporary file renamed into place: nothing else is left beside it.
    assert sorted(p.name for p in Path(report.path).parent.iterdir()) == ["joint_custom.onnx", "joint_portable.onnx"]


def test_portable_export_uses_standard_operators_only(joint):
    _, _, report = joint
    assert report.passed and report.max_abs_diff < 1e-4
    model = onnx.load(report.path)
    assert not model.functions and all(o.domain in ("", "ai.onnx") for o in model.opset_import)
    hist = report.op_histogram
    assert not any("pacup" in k for k in hist)
    assert "Gather" not in hist and "GatherElements" not in hist  # no unfold-born gather chains
    # 2 transposed layers x 25 taps, each one adapting kernel and one 1x1 product.
    assert hist["Exp"] == 50 and hist["DepthToSpace"] == 2 and hist["Conv"] >= 50


@pytest.mark.parametrize("mode", ["custom", "portable"])
def test_backend_reproduces_pytorch_at_other_sizes(joint, mode, lib):
    net, custom, portable = joint
    path = (custom if mode == "custom" else portable).path
    backend = OnnxBackend(path, device="cpu")
    assert backend.factor == 4 and backend.receptive_radius == net.receptive_radius
    assert backend.native == (mode == "custom")
    before = native_info(lib)["cpu_computes"]
    gen = torch.Generator().manual_seed(5)
    for b, c, h, w in [(1, 1, 9, 14), (2, 2, 6, 5)]:  # depth, and a 2-channel flow batch
        low, guide = torch.rand(b, c, h, w, generator=gen), torch.rand(b, 3, 4 * h, 4 * w, generator=gen)
        with torch.no_grad():
            ref = net(low, guide)
        out = backend(low, guide)
        assert isinstance(out, torch.Tensor) and out.shape == ref.shape
        assert float((out - ref).abs().max()) < 1e-4
        np.testing.assert_allclose(backend.run(low.numpy(), guide.numpy()), ref.numpy(), atol=1e-4)
    ran = native_info(lib)["cpu_computes"] - before
    assert ran == (2 * 2 * 2 if mode == "custom" else 0)  # 2 layers x 2 shapes x (call + run)


def test_backend_without_the_library_runs_the_fallback(joint, monkeypatch):
    net, custom, _ = joint
    monkeypatch.setenv("PACUP_ORT_LIBRARY", "none")  # as after a failed native build
    with pytest.warns(RuntimeWarning, match="fallback"):
        backend = OnnxBackend(custom.path, device="cpu")
    assert not backend.native
    low, guide = torch.rand(1, 1, 7, 8), torch.rand(1, 3, 28, 32)
    with torch.no_grad():
        np.testing.assert_allclose(backend.run(low.numpy(), guide.numpy()), net(low, guide).numpy(), atol=1e-4)


def test_export_of_a_stack_of_every_layer_kind(tmp_path, lib):
    torch.manual_seed(1)
    net = Stack().eval()
    report = export_model(net, tmp_path / "stack.onnx", mode="custom", sample_inputs=stack_inputs(8, 10, 0),
                          check_inputs=stack_inputs(11, 7, 1))
    assert report.passed and report.max_abs_diff < 1e-4
    assert report.traced_layers == []  # the masked call is traced inside its wrapper
    hist = report.op_histogram
    assert hist["pacup::PacConv2d"] == 2 and hist["pacup::PacConvTranspose2d"] == 1
    model = onnx.load(report.path)
    # PacConv2d appears with two configurations (inverse + smoothing, pooling): overloads.
    assert _functions_cover_nodes(model) and len(model.functions) == 3
    assert {n.overload for n in model.graph.node if n.op_type == "PacConv2d"} == {"cfg0", "cfg1"}
    assert model.ir_version >= 10
    assert report.runs[0].name == "native CPU kernel" and report.runs[0].native_computes == 3
    # The masked layer stays standard operators, computed by the PyTorch fast path's trace.
    assert "Conv" in hist


def test_export_rejects_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="mode"):
        export_model(PacJointUpsample(2), tmp_path / "x.onnx", mode="fast")
    with pytest.raises(ValueError, match="sample_inputs"):
        export_model(Stack(), tmp_path / "x.onnx")
    with pytest.raises(ValueError, match="opset"):
        export_model(PacJointUpsample(2), tmp_path / "x.onnx", opset=13)


def test_check_export_reruns_the_check_and_raises_beyond_tolerance(joint):
    net, custom, _ = joint
    report = check_export(custom.path, net)
    assert report.passed and report.mode == "custom" and report.custom_nodes == 2
    with pytest.raises(OnnxExportError, match="does not reproduce") as info:
        check_export(custom.path, net, tolerance=-1.0)  # no difference is below 0
    assert info.value.report is not None and info.value.report.max_abs_diff < 1e-4
    other = PacJointUpsample(4, variant="lite").eval()  # other weights: a real mismatch
    with pytest.raises(OnnxExportError, match="FAILED"):
        check_export(custom.path, other)


def test_float16_export(tmp_path, lib):
    net = PacJointUpsample(2, variant="lite").eval()
    report = export_model(net, tmp_path / "half.onnx", mode="custom", fp16=True)
    assert report.passed and report.fp16 and report.max_abs_diff < 3e-2
    model = onnx.load(report.path)
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT16
    backend = OnnxBackend(report.path, device="cpu")
    low, guide = torch.rand(1, 1, 10, 12), torch.rand(1, 3, 20, 24)
    out = backend.run(low.numpy(), guide.numpy())  # float32 in and out
    with torch.no_grad():
        ref = net(low, guide).numpy()
    assert out.dtype == np.float32 and np.abs(out - ref).max() < 3e-2


def test_leaky_network_exports_with_standard_leaky_relu(tmp_path, lib):
    torch.manual_seed(3)
    net = PacJointUpsample(2, variant="lite", residual=True, negative_slope=0.1).eval()
    report = export_model(net, tmp_path / "leaky.onnx", mode="custom")
    assert report.passed and report.max_abs_diff < 1e-4
    assert report.op_histogram.get("LeakyRelu", 0) >= 5 and "Relu" not in report.op_histogram
    backend = OnnxBackend(report.path, device="cpu")
    low, guide = torch.rand(1, 1, 9, 7), torch.rand(1, 3, 18, 14)
    with torch.no_grad():
        ref = net(low, guide).numpy()
    assert np.abs(backend.run(low.numpy(), guide.numpy()) - ref).max() < 1e-4


def test_pyramid_guidance_network_exports(tmp_path, lib):
    torch.manual_seed(4)
    net = PacJointUpsample(4, variant="lite", residual=True, guide_pyramid=True).eval()
    report = export_model(net, tmp_path / "pyramid.onnx", mode="custom")
    assert report.passed and report.max_abs_diff < 1e-4
    backend = OnnxBackend(report.path, device="cpu")
    low, guide = torch.rand(1, 1, 9, 7), torch.rand(1, 3, 36, 28)
    with torch.no_grad():
        ref = net(low, guide).numpy()
    assert np.abs(backend.run(low.numpy(), guide.numpy()) - ref).max() < 1e-4
