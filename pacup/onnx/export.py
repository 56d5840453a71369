"""Export of pacup models to ONNX, with a check that ONNX Runtime reproduces PyTorch.

Two forms (``mode``):

- ``"portable"``: PAC layers as standard ONNX operators (Slice, Sub, Mul, ReduceSum, Exp,
  1x1 Conv, DepthToSpace ...; see :mod:`pacup.onnx._graph`). Runs on any provider.
- ``"custom"``: each PAC layer is one node ``pacup::PacConv2d`` / ``pacup::PacConvTranspose2d``
  with its configuration as attributes, and the model carries, for each configuration, an
  ONNX function of the same domain and name holding the standard-operator graph. ONNX
  Runtime runs the native kernel when the library (:func:`pacup.onnx.library_path`) is
  registered, and the function body everywhere else.

Both come from one ``torch.onnx.export(..., dynamo=True)`` in which the PAC layers are
``torch.onnx.ops.symbolic`` nodes; the portable form inlines the function bodies.
PAC calls the custom op does not cover (``mask=``, ``kernel=``, channel-wise kernels,
transposed layers with unequal strides) are traced through the PyTorch fast path, which is
also standard operators; the report lists them.
"""

from __future__ import annotations

import copy
import inspect
import json
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .. import __version__
from ..ops import PacConv2d, PacConvTranspose2d, PacPool2d
from ..ops import _common as C
from . import _graph as G

__all__ = ["ExportReport", "OnnxExportError", "check_export", "export_model", "MODES", "DEFAULT_OPSET"]

MODES = ("portable", "custom")
DEFAULT_OPSET = 18


class OnnxExportError(RuntimeError):
    """The export failed, or ONNX Runtime does not reproduce the PyTorch output.

    ``report`` holds the :class:`ExportReport` when the file was written.
    """

    def __init__(self, msg: str, report: "ExportReport | None" = None):
        super().__init__(msg)
        self.report = report


@dataclass
class CheckRun:
    """One ONNX Runtime run of the check."""

    name: str  # e.g. "native CPU kernel", "fallback bodies", "portable graph"
    providers: list[str]
    max_abs_diff: float
    native_computes: int = 0  # custom-op kernel runs during this check (native runs only)


@dataclass
class ExportReport:
    """What :func:`export_model` wrote and how the check went.

    ``max_abs_diff`` is the largest difference over all check runs (None when unchecked).
    """

    path: str
    mode: str
    opset: int
    fp16: bool
    input_names: list[str]
    output_names: list[str]
    custom_nodes: int
    functions: int
    traced_layers: list[str]
    op_histogram: dict[str, int]
    seconds: float
    check_shapes: list[tuple[int, ...]] = field(default_factory=list)
    runs: list[CheckRun] = field(default_factory=list)
    tolerance: float | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def checked(self) -> bool:
        return bool(self.runs)

    @property
    def max_abs_diff(self) -> float | None:
        return max((r.max_abs_diff for r in self.runs), default=None)

    @property
    def passed(self) -> bool | None:
        if not self.runs:
            return None
        return self.max_abs_diff <= self.tolerance

    def summary(self) -> str:
        lines = [f"wrote {self.path} ({self.mode}, opset {self.opset}{', float16' if self.fp16 else ''}, "
                 f"{sum(self.op_histogram.values())} nodes, {self.seconds:.1f} s)"]
        if self.mode == "custom":
            lines.append(f"  {self.custom_nodes} pacup custom nodes, {self.functions} fallback function(s)")
        if self.traced_layers:
            lines.append("  traced as standard operators: " + "; ".join(self.traced_layers))
        for r in self.runs:
            extra = f", {r.native_computes} native kernel runs" if r.native_computes else ""
            lines.append(f"  check {r.name} [{', '.join(r.providers)}]: max |ORT - PyTorch| = {r.max_abs_diff:.3g}{extra}")
        if self.runs:
            lines.append(f"  {'passed' if self.passed else 'FAILED'} (tolerance {self.tolerance:g}, "
                         f"inputs {', '.join(str(tuple(s)) for s in self.check_shapes)})")
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)

    __str__ = summary


# ----------------------------------------------------------------------------- layers


def _layer_spec(layer: nn.Module, dtype: int) -> tuple[G.PacSpec | None, str | None]:
    """(spec, None) for a layer the custom op covers, else (None, reason)."""
    if getattr(layer, "channel_wise", False):
        return None, "channel-wise adapting kernel"
    kt = C.parse_kernel_type(layer.kernel_type)
    alpha = lam = 0.0
    if kt.is_inverse:
        alpha = float(layer.inv_alpha.detach().reshape(-1)[0]) if layer.inv_alpha is not None else kt.alpha
        lam = float(layer.inv_lambda.detach().reshape(-1)[0]) if layer.inv_lambda is not None else kt.lam
    nk = bool(layer.normalize_kernel)
    nm = nk if layer.normalize_mask is None else bool(layer.normalize_mask)
    # Without a mask: Z = sum of K (normalize_kernel), else the sample count (normalize_mask).
    normalize = 2 if nk else (1 if nm else 0)
    pool = isinstance(layer, PacPool2d)
    transposed = isinstance(layer, PacConvTranspose2d)
    spec = G.PacSpec(
        op=G.CONV_T if transposed else G.CONV, kernel=tuple(layer.kernel_size), stride=tuple(layer.stride),
        padding=tuple(layer.padding), dilation=tuple(layer.dilation),
        output_padding=tuple(layer.output_padding) if transposed else (0, 0),
        kernel_type="inverse" if kt.is_inverse else "gaussian", alpha=alpha, lam=lam, asymmetric=kt.asymmetric,
        normalize=normalize, shared=pool or bool(getattr(layer, "shared_filters", False)),
        has_bias=(not pool) and getattr(layer, "bias", None) is not None,
        has_centre=layer.smooth_weight is not None, dtype=dtype,
    )
    why = spec.unsupported()
    return (None, why) if why else (spec, None)


class _CustomPacLayer(nn.Module):
    """Stands in for a PAC layer during export: one ``pacup::`` symbolic node."""

    def __init__(self, layer: nn.Module, spec: G.PacSpec):
        super().__init__()
        self.layer = layer
        self.spec = spec
        if isinstance(layer, PacPool2d):
            # W = 1 per channel is a shared all-ones filter.
            self.register_buffer("pool_weight", torch.ones(1, 1, *layer.kernel_size))
        else:
            self.pool_weight = None

    def forward(self, input, guide=None, kernel=None, mask=None):
        if kernel is not None or mask is not None or guide is None:
            return self.layer(input, guide, kernel=kernel, mask=mask)
        spec, layer = self.spec, self.layer
        weight = self.pool_weight if self.pool_weight is not None else layer.weight
        weight = weight.to(input.dtype)
        bias = layer.bias if spec.has_bias else None
        centre = C.smooth_centre(guide, layer.smooth_weight) if spec.has_centre else None
        b, cin, h, w = input.shape
        if spec.transposed:
            cout = cin if spec.shared else weight.shape[1]
            shape = [b, cout, guide.shape[2], guide.shape[3]]
        else:
            cout = cin if spec.shared else weight.shape[0]
            ho, wo = C.conv_out_size((h, w), spec.kernel, spec.stride, spec.padding, spec.dilation)
            shape = [b, cout, ho, wo]
        return torch.onnx.ops.symbolic(
            f"{G.DOMAIN}::{spec.op}", [input, guide, weight, bias, centre], spec.attributes(),
            dtype=input.dtype, shape=shape, version=G.DOMAIN_VERSION,
        )


def _wrap_pac_layers(model: nn.Module, dtype: int) -> list[str]:
    """Replaces, in place, every PAC layer the custom op covers; returns the others."""
    traced = []
    for parent_name, parent in list(model.named_modules()):
        for name, child in list(parent._modules.items()):
            if isinstance(child, (PacConv2d, PacConvTranspose2d, PacPool2d)):
                spec, why = _layer_spec(child, dtype)
                full = f"{parent_name}.{name}" if parent_name else name
                if spec is None:
                    traced.append(f"{full} ({why})")
                else:
                    parent._modules[name] = _CustomPacLayer(child, spec)
    return traced


# ----------------------------------------------------------------------------- inputs


def _factor_inputs(factor: int, h: int, w: int, seed: int, batch: int = 1, dtype=torch.float32):
    gen = torch.Generator().manual_seed(seed)
    low = torch.rand(batch, 1, h, w, generator=gen)
    guide = torch.rand(batch, 3, h * factor, w * factor, generator=gen)
    return low.to(dtype), guide.to(dtype)


def _default_dynamic_shapes(model, inputs, factor):
    from torch.export import Dim

    if factor is not None and len(inputs) == 2:
        batch = Dim("batch", min=1, max=1024)
        h, w = Dim("height", min=2, max=8192), Dim("width", min=2, max=8192)
        return ({0: batch, 2: h, 3: w}, {0: batch, 2: factor * h, 3: factor * w})
    return tuple({0: Dim.AUTO, 2: Dim.AUTO, 3: Dim.AUTO} if t.dim() == 4 else None for t in inputs)


def _input_names(model, n):
    try:
        params = [p for p in inspect.signature(model.forward).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        names = [p.name for p in params[:n]]
    except (TypeError, ValueError):
        names = []
    return names if len(names) == n else [f"input{i}" for i in range(n)]


# ----------------------------------------------------------------------------- ONNX post-processing


def _attach_functions(proto, opset: int, dtype: int) -> tuple[int, int]:
    """Adds one fallback function per PAC configuration; returns (custom nodes, functions)."""
    import onnx

    nodes = [n for n in proto.graph.node if n.domain == G.DOMAIN]
    specs: dict = {}
    for n in nodes:
        specs.setdefault(n.op_type, {}).setdefault(G.spec_from_node(n, dtype), []).append(n)
    functions = []
    for op, by_spec in specs.items():
        several = len(by_spec) > 1
        for i, (spec, members) in enumerate(by_spec.items()):
            overload = f"cfg{i}" if several else None
            functions.append(G.build_function(spec, opset, overload))
            for n in members:
                if overload:
                    n.overload = overload
    proto.functions.extend(functions)
    if nodes and not any(o.domain == G.DOMAIN for o in proto.opset_import):
        proto.opset_import.append(onnx.helper.make_opsetid(G.DOMAIN, G.DOMAIN_VERSION))
    if any(n.overload for n in nodes):
        proto.ir_version = max(proto.ir_version, 10)  # function overloads
    elif proto.ir_version > 9 and opset <= 20:
        proto.ir_version = 9  # nothing of IR 10 is used: keeps ONNX Runtime 1.17 able to load it
    return len(nodes), len(functions)


def _make_portable(proto):
    import onnx
    import onnx.inliner

    proto = onnx.inliner.inline_local_functions(proto)
    keep = [o for o in proto.opset_import if o.domain != G.DOMAIN]
    del proto.opset_import[:]
    proto.opset_import.extend(keep)
    if proto.ir_version > 9:
        proto.ir_version = 9
    return proto


def _histogram(proto) -> dict[str, int]:
    hist: dict[str, int] = {}
    for n in proto.graph.node:
        key = n.op_type if n.domain in ("", "ai.onnx") else f"{n.domain}::{n.op_type}"
        hist[key] = hist.get(key, 0) + 1
    return dict(sorted(hist.items(), key=lambda kv: -kv[1]))


def _metadata(proto, model, mode, fp16):
    meta = {"pacup.version": __version__, "pacup.mode": mode, "pacup.dtype": "float16" if fp16 else "float32"}
    if getattr(model, "factor", None) is not None:
        meta["pacup.factor"] = str(int(model.factor))
    if getattr(model, "receptive_radius", None) is not None:
        meta["pacup.receptive_radius"] = str(int(model.receptive_radius))
    if isinstance(getattr(model, "config", None), dict):
        meta["pacup.config"] = json.dumps(model.config, sort_keys=True)
    for k, v in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = k, v


# ----------------------------------------------------------------------------- check


def _check(path, report, model, check_inputs, fp16, tolerance, library):
    import onnxruntime as ort

    from .library import native_info
    from .runtime import make_session

    with torch.no_grad():
        ref = model(*check_inputs)
    ref = ref[0] if isinstance(ref, (tuple, list)) else ref
    ref = ref.detach().float().cpu().numpy()
    feeds = {name: t.detach().cpu().numpy().astype(np.float16 if fp16 else np.float32)
             for name, t in zip(report.input_names, check_inputs)}
    report.check_shapes = [tuple(t.shape) for t in check_inputs]
    report.tolerance = tolerance

    def run(name, lib):
        sess = make_session(path, providers=["CPUExecutionProvider"], library=lib)
        before = native_info(lib)["cpu_computes"] if lib else 0
        out = sess.run(None, feeds)[0].astype(np.float32)
        if out.shape != ref.shape:
            raise OnnxExportError(f"{name}: ONNX Runtime output shape {out.shape} != PyTorch {ref.shape}", report)
        used = (native_info(lib)["cpu_computes"] - before) if lib else 0
        report.runs.append(CheckRun(name, sess.get_providers(), float(np.abs(out - ref).max()), used))

    if report.mode == "portable":
        run("portable graph", None)
    else:
        if library:
            run("native CPU kernel", library)
            if report.runs[-1].native_computes == 0 and report.custom_nodes:
                raise OnnxExportError("the native library was registered but its kernel did not run", report)
        else:
            report.notes.append("native library not available: checked the fallback bodies only")
        run("fallback bodies", None)
    del ort  # imported for a clear ImportError above


# ----------------------------------------------------------------------------- main entry


def export_model(
    model: nn.Module,
    path,
    mode: str = "portable",
    opset: int = DEFAULT_OPSET,
    fp16: bool = False,
    check: bool = True,
    sample_inputs: tuple | None = None,
    dynamic_shapes=None,
    check_inputs: tuple | None = None,
    tolerance: float | None = None,
    library: str | None = "auto",
) -> ExportReport:
    """Export a pacup model to ONNX with dynamic height and width, then check it.

    Args:
        model: a :class:`pacup.models.PacJointUpsample` (or any module whose PAC layers are
            ``PacConv2d`` / ``PacConvTranspose2d`` / ``PacPool2d`` modules).
        path: output ``.onnx`` file.
        mode: ``"portable"`` (standard operators only) or ``"custom"`` (``pacup::`` nodes
            with standard-operator fallback functions).
        opset: ONNX opset of the standard operators (>= 17; 18 is what PyTorch 2.13 emits).
        fp16: store weights and compute in float16 (inputs and outputs are float16 too;
            :class:`pacup.onnx.OnnxBackend` converts).
        check: run the file in ONNX Runtime (CPU) on a sample of another size than the
            export sample and compare with PyTorch; raises :class:`OnnxExportError` beyond
            ``tolerance``. In ``custom`` mode both the native kernel (when the library is
            available) and the fallback bodies are checked.
        sample_inputs: example inputs for tracing (no dimension that should stay dynamic may
            be 1 there). Default for models with a ``factor`` attribute: low (2, 1, 16, 16)
            and guide (2, 3, 16*factor, 16*factor).
        dynamic_shapes: as ``torch.export``; default: batch, height and width dynamic (the
            guide at ``factor`` times the low resolution), or ``Dim.AUTO`` on the batch and
            spatial dimensions of every 4-D input of other modules.
        check_inputs: inputs for the check (default: a 13x19 low-resolution sample for
            ``factor`` models, else ``sample_inputs``).
        tolerance: largest accepted |ORT - PyTorch| (default 1e-4, 3e-2 with ``fp16``).
        library: custom-op library for the check: ``"auto"`` (:func:`library_path`), a
            path, or None (check the fallback bodies only).

    Returns:
        An :class:`ExportReport` (``print(report)`` gives a summary, ``report.max_abs_diff``
        the check's largest difference, ``report.op_histogram`` the graph's operators).

    Raises:
        ValueError: bad arguments. ImportError: onnx / onnxscript / onnxruntime missing
        (``pip install 'pacup-upsampling[cpu]'``). OnnxExportError: export or check failed.

    Example:
        >>> from pacup.models import PacJointUpsample
        >>> report = export_model(PacJointUpsample(8), "pac_x8.onnx", mode="custom")
        >>> print(report)
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if not isinstance(opset, int) or opset < 17:
        raise ValueError(f"opset must be an integer >= 17, got {opset!r}")
    if not callable(getattr(getattr(torch.onnx, "ops", None), "symbolic", None)):
        raise ImportError(f"ONNX export needs torch.onnx.ops.symbolic (PyTorch 2.8 or newer), "
                          f"this is PyTorch {torch.__version__}")
    try:
        import onnx  # noqa: F401
        import onnxscript  # noqa: F401  (torch.onnx's exporter needs it)
    except ImportError as exc:
        raise ImportError(f"ONNX export needs onnx and onnxscript ({exc.name} is missing): "
                          "pip install 'pacup-upsampling[cpu]'") from None
    if check:
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            raise ImportError("the export check needs onnxruntime: pip install 'pacup-upsampling[cpu]' "
                              "(or [gpu]), or pass check=False") from None
    from onnx import TensorProto

    t0 = time.perf_counter()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    reference = copy.deepcopy(model).eval().float().cpu()  # export and check run on the CPU
    dtype = torch.float16 if fp16 else torch.float32
    factor = getattr(model, "factor", None)
    if sample_inputs is None:
        if factor is None:
            raise ValueError("sample_inputs is required for models without a 'factor' attribute")
        # Batch 2: torch.export specialises dimensions whose sample size is 1.
        sample_inputs = _factor_inputs(int(factor), 16, 16, seed=0, batch=2)
    sample_inputs = tuple(t.detach().cpu().float() for t in sample_inputs)
    if check_inputs is None:
        check_inputs = _factor_inputs(int(factor), 13, 19, seed=1) if factor is not None else sample_inputs
    if dynamic_shapes is None:
        dynamic_shapes = _default_dynamic_shapes(model, sample_inputs, None if factor is None else int(factor))

    traced_model = copy.deepcopy(reference).to(dtype)
    onnx_dtype = TensorProto.FLOAT16 if fp16 else TensorProto.FLOAT
    traced = _wrap_pac_layers(traced_model, onnx_dtype)
    input_names = _input_names(reference, len(sample_inputs))
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                traced_model, tuple(t.to(dtype) for t in sample_inputs), dynamo=True,
                dynamic_shapes=dynamic_shapes, opset_version=opset, input_names=input_names,
                output_names=["output"], optimize=True, verify=False, report=False, verbose=False,
            )
    except Exception as exc:  # noqa: BLE001 - re-raised with context
        raise OnnxExportError(f"torch.onnx.export failed: {type(exc).__name__}: {exc}") from exc
    proto = program.model_proto
    n_custom, n_functions = _attach_functions(proto, opset, onnx_dtype)
    if mode == "portable":
        proto = _make_portable(proto)
    _metadata(proto, reference, mode, fp16)
    import onnx

    onnx.checker.check_model(proto)
    from ..io._files import atomic_write
    from ..io.errors import WriteError

    try:  # never a half-written .onnx at ``path`` (a full disk, Ctrl-C)
        atomic_write(path, lambda fh: fh.write(proto.SerializeToString()))
    except WriteError as exc:
        raise OnnxExportError(str(exc)) from None
    report = ExportReport(
        path=str(path), mode=mode, opset=opset, fp16=fp16, input_names=input_names, output_names=["output"],
        custom_nodes=n_custom if mode == "custom" else 0, functions=n_functions if mode == "custom" else 0,
        traced_layers=traced, op_histogram=_histogram(proto), seconds=0.0,
    )
    try:
        if check:
            _verify(report, reference, check_inputs, tolerance, library)
    finally:
        report.seconds = time.perf_counter() - t0
    return report


def _verify(report, model, check_inputs, tolerance, library):
    if library == "auto":
        from .library import library_path

        library = library_path()
    tol = tolerance if tolerance is not None else (3e-2 if report.fp16 else 1e-4)
    _check(report.path, report, model, check_inputs, report.fp16, tol, library if report.mode == "custom" else None)
    if not report.passed:
        raise OnnxExportError(f"ONNX Runtime does not reproduce PyTorch (the file is kept for inspection):\n"
                              f"{report.summary()}", report)


def check_export(path, model: nn.Module, check_inputs: tuple | None = None, tolerance: float | None = None,
                 library: str | None = "auto") -> ExportReport:
    """Runs the check of :func:`export_model` again on an exported file.

    Compares ONNX Runtime (CPU; native kernel and fallback bodies for ``custom`` files)
    with ``model`` on ``check_inputs`` (default: the 13x19 sample for ``factor`` models).
    Returns the report; raises :class:`OnnxExportError` beyond ``tolerance``.
    """
    import onnx

    t0 = time.perf_counter()
    proto = onnx.load(str(path))
    meta = {p.key: p.value for p in proto.metadata_props}
    mode = meta.get("pacup.mode", "custom" if any(n.domain == G.DOMAIN for n in proto.graph.node) else "portable")
    opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), DEFAULT_OPSET)
    report = ExportReport(
        path=str(path), mode=mode, opset=opset, fp16=meta.get("pacup.dtype") == "float16",
        input_names=[i.name for i in proto.graph.input], output_names=[o.name for o in proto.graph.output],
        custom_nodes=sum(n.domain == G.DOMAIN for n in proto.graph.node), functions=len(proto.functions),
        traced_layers=[], op_histogram=_histogram(proto), seconds=0.0,
    )
    factor = getattr(model, "factor", None)
    if check_inputs is None:
        if factor is None:
            raise ValueError("check_inputs is required for models without a 'factor' attribute")
        check_inputs = _factor_inputs(int(factor), 13, 19, seed=1)
    reference = copy.deepcopy(model).eval().float().cpu()
    try:
        _verify(report, reference, tuple(t.detach().cpu().float() for t in check_inputs), tolerance, library)
    finally:
        report.seconds = time.perf_counter() - t0
    return report
