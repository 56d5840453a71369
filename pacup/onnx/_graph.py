"""PAC layers as graphs of standard ONNX operators.

One function per layer configuration, used twice: as the fallback body of the custom nodes
``pacup::PacConv2d`` / ``pacup::PacConvTranspose2d`` (an ONNX function in the model's
``functions`` list, run wherever the native library is not registered), and, inlined, as
the portable export.

The graph is the same computation as :mod:`pacup.ops.functional` (read its docstring):
the sum over the window is accumulated one tap at a time from strided slices (Slice), the
adapting kernel is elementwise maths and one ReduceSum over the guide channels, each tap's
filter is a 1x1 Conv, and the transposed layer is split into its stride x stride output
phases, interleaved by DepthToSpace. No Gather, no unfold buffer, and only constant slice
bounds: height and width stay dynamic.
"""

from __future__ import annotations

from dataclasses import dataclass

# onnx is imported where graphs are built, so that pacup.onnx.export imports without it
# (export_model then explains what to install).

DOMAIN = "pacup"
DOMAIN_VERSION = 1
CONV = "PacConv2d"
CONV_T = "PacConvTranspose2d"
INV_EPS = 1e-4  # pacup.ops._common.INV_EPS
_END = 2**62  # "to the end" for Slice
MIN_OPSET = 15  # Shape(start, end)

FLOAT, FLOAT16, INT64 = 1, 10, 7  # onnx.TensorProto element types


@dataclass(frozen=True)
class PacSpec:
    """Everything that shapes the graph of one PAC layer (not its channel counts or weights,
    which the graph reads from its inputs)."""

    op: str
    kernel: tuple[int, int]
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    output_padding: tuple[int, int] = (0, 0)
    kernel_type: str = "gaussian"  # or "inverse"
    alpha: float = 0.0
    lam: float = 0.0
    asymmetric: bool = False
    normalize: int = 0  # 0 none, 1 sample count, 2 sum of K
    shared: bool = False
    has_bias: bool = True
    has_centre: bool = False
    dtype: int = FLOAT

    @property
    def transposed(self) -> bool:
        return self.op == CONV_T

    def attributes(self) -> dict:
        """Node attributes (what the native kernel reads; ``shared`` is informative)."""
        attrs = dict(
            kernel_shape=list(self.kernel), strides=list(self.stride), pads=list(self.padding),
            dilations=list(self.dilation), kernel_type=self.kernel_type, normalize=int(self.normalize),
        )
        if self.transposed:
            attrs["output_padding"] = list(self.output_padding)
        if self.kernel_type == "inverse":
            attrs.update(inv_alpha=float(self.alpha), inv_lambda=float(self.lam), asymmetric=int(self.asymmetric))
        if self.shared:
            attrs["shared"] = 1
        return attrs

    def unsupported(self) -> str | None:
        """Why this configuration has no standard-operator graph here (None if it has)."""
        if self.op not in (CONV, CONV_T):
            return f"unknown op {self.op}"
        if self.kernel_type not in ("gaussian", "inverse"):
            return f"kernel_type {self.kernel_type!r}"
        if self.transposed:
            if self.stride[0] != self.stride[1]:
                return "transposed layer with different strides per dimension"
            for dim in range(2):
                k, s, p, d = self.kernel[dim], self.stride[dim], self.padding[dim], self.dilation[dim]
                if any(not any((t * d - p - r) % s == 0 for t in range(k)) for r in range(s)):
                    return "an output phase that no tap reaches (stride and dilation share a factor)"
        return None


# ----------------------------------------------------------------------------- builder


class _Builder:
    def __init__(self, dtype: int, prefix: str = "n"):
        from onnx import helper

        self.helper = helper
        self.nodes = []
        self.dtype = dtype
        self._n = 0
        self._prefix = prefix

    def _name(self, hint: str) -> str:
        self._n += 1
        return f"{hint}_{self._n}"

    def op(self, op_type: str, inputs: list[str], hint: str | None = None, **attrs) -> str:
        out = self._name(hint or op_type.lower())
        self.nodes.append(self.helper.make_node(op_type, inputs, [out], name=f"{self._prefix}_{out}", **attrs))
        return out

    def ints(self, values, hint="c") -> str:
        t = self.helper.make_tensor(self._name(hint), INT64, [len(values)], [int(v) for v in values])
        return self.op("Constant", [], hint, value=t)

    def scalar(self, value: float, hint="s") -> str:
        t = self.helper.make_tensor(self._name(hint), self.dtype, [], [float(value)])
        return self.op("Constant", [], hint, value=t)

    def pad(self, x: str, top: int, bottom: int, left: int, right: int) -> str:
        if top == bottom == left == right == 0:
            return x
        return self.op("Pad", [x, self.ints([0, 0, top, left, 0, 0, bottom, right], "pads")], "pad")

    def slice(self, x: str, starts, ends, steps=(1, 1)) -> str:
        ends = [e if e < 0 else _END for e in ends]
        if list(starts) == [0, 0] and ends == [_END, _END] and list(steps) == [1, 1]:
            return x
        return self.op("Slice", [x, self.ints(starts, "st"), self.ints(ends, "en"), self.ints([2, 3], "ax"),
                                 self.ints(steps, "sp")], "slice")

    def ones_plane(self, x: str) -> str:
        """A (B, 1, H, W) tensor of ones shaped like x."""
        b = self.op("Shape", [x], "bshape", start=0, end=1)
        hw = self.op("Shape", [x], "hwshape", start=2, end=4)
        shape = self.op("Concat", [b, self.ints([1], "one"), hw], "oshape", axis=0)
        value = self.helper.make_tensor("one", self.dtype, [1], [1.0])
        return self.op("ConstantOfShape", [shape], "ones", value=value)


def _kernel(bld: _Builder, spec: PacSpec, tap: str, centre: str) -> str:
    diff = bld.op("Sub", [tap, centre], "diff")
    if spec.kernel_type == "inverse" and spec.asymmetric:
        diff = bld.op("Relu", [diff], "asym")
    d2 = bld.op("ReduceSum", [bld.op("Mul", [diff, diff], "sq"), bld.ints([1], "axis")], "d2", keepdims=1)
    if spec.kernel_type == "gaussian":
        return bld.op("Exp", [bld.op("Mul", [d2, bld.scalar(-0.5)], "halfd2")], "k")
    powed = bld.op("Pow", [bld.op("Add", [d2, bld.scalar(INV_EPS)], "d2e"), bld.scalar(0.5 * spec.lam)], "pow")
    return bld.op("Add", [powed, bld.scalar(spec.alpha)], "k")


def _tap_weight(bld: _Builder, w: str, ty: int, tx: int) -> str:
    """W[:, :, ty, tx]: a (Cout, Cin, 1, 1) Conv filter, or a (1, 1, 1, 1) scalar when shared."""
    return bld.op("Slice", [w, bld.ints([ty, tx]), bld.ints([ty + 1, tx + 1]), bld.ints([2, 3])], "wtap")


def _accumulate(bld, spec, taps, centre, w):
    """taps: list of (x slice, guide slice, validity slice or None, ty, tx)."""
    num = z = None
    for xs, fs, vs, ty, tx in taps:
        k = _kernel(bld, spec, fs, centre)
        xk = bld.op("Mul", [xs, k], "xk")
        wt = _tap_weight(bld, w, ty, tx)
        contrib = bld.op("Mul", [xk, wt], "c") if spec.shared else bld.op("Conv", [xk, wt], "c")
        num = contrib if num is None else bld.op("Add", [num, contrib], "num")
        if vs is not None:
            zc = bld.op("Mul", [k, vs], "zk") if spec.normalize == 2 else vs
            z = zc if z is None else bld.op("Add", [z, zc], "z")
    return num, z


def _finish(bld, spec, num, z, bias):
    if z is not None:
        nz = bld.op("Greater", [z, bld.scalar(0.0)], "nz")
        safe = bld.op("Where", [nz, z, bld.scalar(1.0)], "zsafe")
        num = bld.op("Where", [nz, bld.op("Div", [num, safe], "q"), bld.scalar(0.0)], "normed")
    if bias is not None:
        num = bld.op("Add", [num, bld.op("Reshape", [bias, bld.ints([1, -1, 1, 1], "bshape")], "b4")], "biased")
    return num


def _conv_body(bld: _Builder, spec: PacSpec, x, g, w, bias, centre_src):
    (kh, kw), (sy, sx), (py, px), (dy, dx) = spec.kernel, spec.stride, spec.padding, spec.dilation
    xp = bld.pad(x, py, py, px, px)
    gp = bld.pad(g, py, py, px, px)
    cp = gp if centre_src == g else bld.pad(centre_src, py, py, px, px)
    vp = bld.pad(bld.ones_plane(x), py, py, px, px) if spec.normalize else None
    span_y, span_x = dy * (kh - 1), dx * (kw - 1)

    def window(t, oy, ox):
        return bld.slice(t, [oy, ox], [oy - span_y, ox - span_x], [sy, sx])

    centre = window(cp, dy * (kh // 2), dx * (kw // 2))
    taps = []
    for ty in range(kh):
        for tx in range(kw):
            oy, ox = ty * dy, tx * dx
            taps.append((window(xp, oy, ox), window(gp, oy, ox), None if vp is None else window(vp, oy, ox), ty, tx))
    num, z = _accumulate(bld, spec, taps, centre, w)
    return _finish(bld, spec, num, z, bias)


def _phase_plan(k, s, p, op, d):
    """Per-dimension plan of the sub-pixel decomposition (see pacup.ops.functional).

    With n low-resolution samples the output has n*s + a samples; phase r has n + c[r]
    pixels and gathers, through tap t, the sample m - delta at phase pixel m.
    """
    a = -s - 2 * p + d * (k - 1) + op + 1
    taps = [[(t, (t * d - p - r) // s) for t in range(k) if (t * d - p - r) % s == 0] for r in range(s)]
    c = [(a - r + s - 1) // s for r in range(s)]
    deltas = [dl for ts in taps for _, dl in ts]
    lo = max(0, max(deltas))
    hi = max(0, max(c) - min(deltas))
    return dict(a=a, taps=taps, c=c, lo=lo, hi=hi)


def _transposed_body(bld: _Builder, spec: PacSpec, x, g, w, bias, centre_src):
    s = spec.stride[0]
    if not spec.shared:  # (Cin, Cout, kh, kw) -> (Cout, Cin, kh, kw), once for all taps
        w = bld.op("Transpose", [w], "wt", perm=[1, 0, 2, 3])
    plans = [_phase_plan(spec.kernel[i], s, spec.padding[i], spec.output_padding[i], spec.dilation[i]) for i in range(2)]
    py_, px_ = plans
    xp = bld.pad(x, py_["lo"], py_["hi"], px_["lo"], px_["hi"])
    vp = bld.pad(bld.ones_plane(x), py_["lo"], py_["hi"], px_["lo"], px_["hi"]) if spec.normalize else None
    # Guide at the samples' positions q*s + d*(k//2) - p (zero outside the image).
    loc0 = [spec.dilation[i] * (spec.kernel[i] // 2) - spec.padding[i] for i in range(2)]
    glo = [max(0, -loc0[i]) for i in range(2)]
    ghi = [max(0, -s + loc0[i] - plans[i]["a"] + 1) for i in range(2)]
    gpad = bld.pad(g, glo[0], ghi[0], glo[1], ghi[1])
    starts = [loc0[i] + glo[i] for i in range(2)]
    ends = [starts[i] - s + 1 - plans[i]["a"] - glo[i] - ghi[i] for i in range(2)]
    samples = bld.slice(gpad, starts, ends, [s, s])
    fp = bld.pad(samples, py_["lo"], py_["hi"], px_["lo"], px_["hi"])

    phases = []
    for ry in range(s):
        for rx in range(s):
            centre = bld.slice(centre_src, [ry, rx], [_END, _END], [s, s])
            taps = []
            for ty, dly in py_["taps"][ry]:
                for tx, dlx in px_["taps"][rx]:
                    st = [py_["lo"] - dly, px_["lo"] - dlx]
                    en = [py_["c"][ry] - dly - py_["hi"], px_["c"][rx] - dlx - px_["hi"]]
                    taps.append((bld.slice(xp, st, en), bld.slice(fp, st, en),
                                 None if vp is None else bld.slice(vp, st, en), ty, tx))
            num, z = _accumulate(bld, spec, taps, centre, w)
            out = _finish(bld, spec, num, z, bias)
            # Phase 0 is the longest; the others are padded to its size before interleaving.
            phases.append(bld.pad(out, 0, py_["c"][0] - py_["c"][ry], 0, px_["c"][0] - px_["c"][rx]))
    stacked = bld.op("Concat", phases, "phases", axis=1) if len(phases) > 1 else phases[0]
    full = bld.op("DepthToSpace", [stacked], "interleaved", blocksize=s, mode="DCR") if s > 1 else stacked
    crop = [plans[i]["a"] - plans[i]["c"][0] * s for i in range(2)]
    return bld.slice(full, [0, 0], crop)


def function_inputs(spec: PacSpec) -> list[str]:
    """Formal inputs, positional like the node's: B stays in place (unused) when only Centre
    is given."""
    names = ["X", "Guide", "W"]
    if spec.has_bias or spec.has_centre:
        names.append("B")
    if spec.has_centre:
        names.append("Centre")
    return names


def build_function(spec: PacSpec, opset: int, overload: str | None = None) -> onnx.FunctionProto:
    """The standard-operator body of one PAC configuration as an ONNX function
    ``pacup.<op>`` (with ``overload`` when several configurations share the name)."""
    from onnx import helper

    why = spec.unsupported()
    if why:
        raise ValueError(f"no standard-operator graph for {spec.op}: {why}")
    if opset < MIN_OPSET:
        raise ValueError(f"the PAC graphs need opset >= {MIN_OPSET}, got {opset}")
    bld = _Builder(spec.dtype, prefix=spec.op)
    names = function_inputs(spec)
    x, g, w = "X", "Guide", "W"
    bias = "B" if spec.has_bias else None
    centre = "Centre" if spec.has_centre else g
    body = _transposed_body if spec.transposed else _conv_body
    out = body(bld, spec, x, g, w, bias, centre)
    bld.nodes.append(helper.make_node("Identity", [out], ["Y"], name=f"{spec.op}_output"))
    fn = helper.make_function(DOMAIN, spec.op, names, ["Y"], bld.nodes, [helper.make_opsetid("", opset)],
                              doc_string=f"Standard-operator fallback of {DOMAIN}::{spec.op}")
    if overload:
        fn.overload = overload
    return fn


def spec_from_node(node: onnx.NodeProto, dtype: int = FLOAT) -> PacSpec:
    """The PacSpec of a ``pacup::`` node (its attributes and which optional inputs it has)."""
    from onnx import helper

    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}

    def pair(name, default):
        v = attrs.get(name)
        if v is None:
            return default
        v = [int(i) for i in v]
        return (v[0], v[1]) if len(v) >= 2 else (v[0], v[0])

    kt = attrs.get("kernel_type", b"gaussian")
    kt = kt.decode() if isinstance(kt, bytes) else str(kt)
    inputs = list(node.input)
    return PacSpec(
        op=node.op_type, kernel=pair("kernel_shape", (1, 1)), stride=pair("strides", (1, 1)),
        padding=pair("pads", (0, 0)), dilation=pair("dilations", (1, 1)),
        output_padding=pair("output_padding", (0, 0)), kernel_type=kt,
        alpha=float(attrs.get("inv_alpha", 0.0)), lam=float(attrs.get("inv_lambda", 0.0)),
        asymmetric=bool(attrs.get("asymmetric", 0)), normalize=int(attrs.get("normalize", 0)),
        shared=bool(attrs.get("shared", 0)), has_bias=len(inputs) > 3 and inputs[3] != "",
        has_centre=len(inputs) > 4 and inputs[4] != "", dtype=dtype,
    )
