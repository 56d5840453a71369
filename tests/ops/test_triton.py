"""The fused Triton PAC kernels against the unfold reference.

Without a GPU the kernels run on CPU tensors under Triton's interpreter: ``pacup.ops.triton``
loads an interpreted copy of its kernels, with ``TRITON_INTERPRET=1`` set only while that
copy is defined, so nothing leaks into other tests (checked below). Sizes are tiny because
the interpreter executes every program in Python. Tests marked ``gpu`` run the compiled
kernels at the network's full size and skip without CUDA.
"""

import os

import pytest
import torch

pytest.importorskip("triton")

from pacup.ops import PacConv2d, PacConvTranspose2d, gpu  # noqa: E402
from pacup.ops import functional as PF  # noqa: E402
from pacup.ops import reference as R  # noqa: E402
from pacup.ops.triton import ops as T  # noqa: E402

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def rand(*shape, seed=0, dtype=torch.float32, device="cpu"):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=torch.float32).to(device=device, dtype=dtype)


def run_with_grads(fn, tensors, args, kwargs, grad_out=None):
    """Output and gradients of every tensor in ``tensors`` (leaves created here) for
    sum(out * grad_out)."""
    leaves = [t.detach().clone().requires_grad_() for t in tensors]
    n = len(leaves)
    extra = {}
    if "inv_alpha" in kwargs:
        extra = {"inv_alpha": leaves[n - 2], "inv_lambda": leaves[n - 1]}
        kwargs = {k: v for k, v in kwargs.items() if k not in extra}
        out = fn(*leaves[:-2], *args, **kwargs, **extra)
    else:
        out = fn(*leaves, *args, **kwargs)
    if grad_out is None:
        grad_out = rand(*out.shape, seed=99, dtype=out.dtype, device=out.device)
    grads = torch.autograd.grad(out, leaves, grad_out)
    return out, grads


def assert_close_rel(actual, expected, tol):
    """Max error relative to the largest magnitude (gradients mix large and tiny entries)."""
    assert actual.shape == expected.shape
    scale = expected.abs().max().clamp_min(1e-6)
    err = (actual.double() - expected.double()).abs().max() / scale
    assert err < tol, f"relative error {err:.2e} >= {tol:.0e}"


LEARNED_INV = dict(kernel_type="inv_0.5_-1.0", inv_alpha=None, inv_lambda=None)

slow = pytest.mark.slow
# (case id, kernel kwargs, geometry, batch): conv geometry (stride, padding, dilation).
# Each case costs seconds in the interpreter: the default set covers the network's layers,
# every normalisation and kernel type, strides, dilation and batch offsets; "slow" adds more.
CONV_CASES = [
    ("gauss-same", dict(), (1, 2, 1), 1),  # PacConv2d of the network
    ("gauss-normk-batch2", dict(normalize_kernel=True), (1, 2, 1), 2),
    ("inv-learned-normk", dict(LEARNED_INV, normalize_kernel=True), (1, 2, 1), 1),
    ("invasym-count-strided-dilated", dict(kernel_type="inv_0.1_0.5_asym", normalize_mask=True), (2, 4, 2), 1),
    pytest.param("gauss-count", dict(normalize_mask=True), (1, 2, 1), 1, marks=slow),
    pytest.param("gauss-stride3-nopad", dict(normalize_kernel=True), (3, 0, 1), 1, marks=slow),
]
# transposed geometry (stride, padding, output_padding, dilation)
TRANSPOSED_CASES = [
    ("gauss-x2", dict(), (2, 2, 1, 1), 1),  # PacConvTranspose2d of the network
    ("gauss-x2-normk-batch2", dict(normalize_kernel=True), (2, 2, 1, 1), 2),
    ("invasym-x2-count", dict(kernel_type="inv_0.1_0.5_asym", normalize_mask=True), (2, 2, 1, 1), 1),
    ("inv-learned-x3", dict(LEARNED_INV, normalize_kernel=True), (3, 2, 2, 1), 1),
    # padding > d*(k//2): guide positions of samples fall outside the guide (read as 0)
    ("gauss-x4-bigpad-dilated", dict(normalize_kernel=True), (4, 5, 3, 2), 1),
    pytest.param("gauss-dilated", dict(normalize_kernel=True), (2, 2, 1, 2), 1, marks=slow),
    pytest.param("gauss-x2-nopad", dict(), (2, 0, 0, 1), 1, marks=slow),
]


def _ids(cases):
    return [c.values[0] if hasattr(c, "values") else c[0] for c in cases]


def _params(cases):
    return [pytest.param(*c.values[1:], marks=c.marks) if hasattr(c, "values") else c[1:] for c in cases]


def _conv_inputs(kw, batch=1, dtype=torch.float32):
    x, f = rand(batch, 3, 6, 7, seed=1, dtype=dtype), rand(batch, 4, 6, 7, seed=2, dtype=dtype)
    w, b = rand(4, 3, 5, 5, seed=3, dtype=dtype) * 0.3, rand(4, seed=4, dtype=dtype)
    extra = [torch.tensor([0.3]), torch.tensor([-0.7])] if "inv_alpha" in kw else []
    return [x, f, w, b, *extra]


def _transposed_inputs(kw, geom, batch=1, dtype=torch.float32):
    s, p, op, d = geom
    size = [(n - 1) * s - 2 * p + d * 4 + op + 1 for n in (3, 4)]
    x, f = rand(batch, 3, 3, 4, seed=5, dtype=dtype), rand(batch, 4, *size, seed=6, dtype=dtype)
    w, b = rand(3, 4, 5, 5, seed=7, dtype=dtype) * 0.3, rand(4, seed=8, dtype=dtype)
    extra = [torch.tensor([0.3]), torch.tensor([-0.7])] if "inv_alpha" in kw else []
    return [x, f, w, b, *extra]


@pytest.mark.parametrize("kw,geom,batch", _params(CONV_CASES), ids=_ids(CONV_CASES))
def test_conv_forward_and_gradients_match_reference(kw, geom, batch):
    tensors = _conv_inputs(kw, batch)
    out, grads = run_with_grads(T.pac_conv2d, tensors, geom, kw)
    ref, ref_grads = run_with_grads(R.pac_conv2d, tensors, geom, kw)
    assert_close_rel(out, ref, 1e-5)
    for g, rg in zip(grads, ref_grads):
        assert_close_rel(g, rg, 1e-4)


@pytest.mark.parametrize("kw,geom,batch", _params(TRANSPOSED_CASES), ids=_ids(TRANSPOSED_CASES))
def test_transposed_forward_and_gradients_match_reference(kw, geom, batch):
    tensors = _transposed_inputs(kw, geom, batch)
    out, grads = run_with_grads(T.pac_conv_transpose2d, tensors, geom, kw)
    ref, ref_grads = run_with_grads(R.pac_conv_transpose2d, tensors, geom, kw)
    assert_close_rel(out, ref, 1e-5)
    for g, rg in zip(grads, ref_grads):
        assert_close_rel(g, rg, 1e-4)


def test_rectangular_kernels_strides_and_odd_channel_counts():
    x, f, w = rand(1, 5, 9, 8, seed=1), rand(1, 3, 9, 8, seed=2), rand(2, 5, 3, 5, seed=3)
    kw = dict(stride=(2, 1), padding=(1, 2), dilation=(1, 2), normalize_kernel=True)
    torch.testing.assert_close(T.pac_conv2d(x, f, w, **kw), R.pac_conv2d(x, f, w, **kw), atol=1e-5, rtol=1e-5)
    xt, wt = rand(1, 5, 4, 3, seed=4), rand(5, 17, 5, 3, seed=5)
    kt = dict(stride=(2, 3), padding=(2, 1), output_padding=(1, 0))
    ft = rand(1, 3, 8, 7, seed=6)
    torch.testing.assert_close(T.pac_conv_transpose2d(xt, ft, wt, **kt), R.pac_conv_transpose2d(xt, ft, wt, **kt),
                               atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision_accumulates_in_float32(dtype):
    geom = (2, 2, 1, 1)
    tensors = _transposed_inputs({}, geom, dtype=dtype)
    kw = dict(normalize_kernel=True)
    out, grads = run_with_grads(T.pac_conv_transpose2d, tensors, geom, kw)
    ref, ref_grads = run_with_grads(R.pac_conv_transpose2d, [t.double() for t in tensors], geom, kw,
                                    grad_out=rand(*out.shape, seed=99, dtype=dtype).double())
    assert out.dtype == dtype and all(g.dtype == dtype for g in grads)
    tol = 1e-2 if dtype == torch.float16 else 3e-2
    assert_close_rel(out, ref, tol)
    for g, rg in zip(grads, ref_grads):
        assert_close_rel(g, rg, 2 * tol)


def test_pooling_and_shared_filters_become_diagonal_filters():
    x, f = rand(1, 3, 6, 7, seed=1), rand(1, 2, 6, 7, seed=2)
    pooled = T.pac_conv2d(x, f, None, padding=1, kernel_size=3, normalize_kernel=True)
    torch.testing.assert_close(pooled, R.pac_pool2d(x, f, 3, padding=1), atol=1e-5, rtol=1e-5)
    shared = rand(1, 1, 5, 5, seed=3)
    torch.testing.assert_close(T.pac_conv2d(x, f, shared, padding=2), R.pac_conv2d(x, f, shared, padding=2),
                               atol=1e-5, rtol=1e-5)


def test_k1_and_no_normalisation_is_conv_transpose():
    # A constant guide gives K = 1 everywhere: the layer is nn.ConvTranspose2d.
    x, w, b = rand(1, 3, 4, 5, seed=1), rand(3, 2, 5, 5, seed=2), rand(2, seed=3)
    f = torch.zeros(1, 1, 8, 10)
    out = T.pac_conv_transpose2d(x, f, w, b, stride=2, padding=2, output_padding=1)
    expected = torch.nn.functional.conv_transpose2d(x, w, b, stride=2, padding=2, output_padding=1)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)


def test_backward_saves_no_window_sized_buffers():
    x, f, w = rand(1, 4, 12, 12, seed=1), rand(1, 3, 24, 24, seed=2), rand(4, 4, 5, 5, seed=3)
    x.requires_grad_()
    sizes = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: sizes.append(t.numel()) or t, lambda t: t):
        out = T.pac_conv_transpose2d(x, f, w, stride=2, padding=2, output_padding=1, normalize_kernel=True)
    # Saved: input, guide, weight, output and Z; the unfold reference keeps C*k*k*H*W.
    assert max(sizes) <= out.numel()
    out.sum().backward()
    assert x.grad.shape == x.shape


def test_inplace_relu_after_a_normalised_layer_keeps_gradients_right():
    # The backward pass must not depend on the output tensor, which the network's
    # ReLU(inplace=True) overwrites.
    x, f, w, b = rand(1, 2, 3, 4, seed=1), rand(1, 3, 6, 8, seed=2), rand(2, 2, 5, 5, seed=3), rand(2, seed=4)
    kw = dict(stride=2, padding=2, output_padding=1, normalize_kernel=True)
    grads = []
    for fn in (T.pac_conv_transpose2d, R.pac_conv_transpose2d):
        leaves = [t.clone().requires_grad_() for t in (x, f, w, b)]
        out = torch.relu_(fn(*leaves, **kw))
        grads.append(torch.autograd.grad(out.square().sum(), leaves))
    for g, rg in zip(*grads):
        assert_close_rel(g, rg, 1e-4)


@pytest.mark.parametrize("bad", ["weight", "guide", "bias"])
def test_operator_refuses_shapes_that_would_read_out_of_bounds(bad):
    x, f, w, b = rand(1, 2, 3, 4), rand(1, 3, 6, 8), rand(2, 3, 5, 5), rand(3)
    if bad == "weight":
        w = rand(4, 3, 5, 5)
    elif bad == "guide":
        f = rand(1, 3, 6, 7)
    else:
        b = rand(4)
    with pytest.raises(ValueError, match=bad):
        T.pac_conv_transpose2d(x, f, w, b, 2, 2, 1)


def test_interpreter_copy_does_not_leak_the_environment_variable():
    before = os.environ.get("TRITON_INTERPRET")
    T.pac_conv2d(rand(1, 1, 4, 4), rand(1, 1, 4, 4), rand(1, 1, 3, 3), padding=1)
    assert os.environ.get("TRITON_INTERPRET") == before


# ------------------------------------------------------------------------------ dispatch


@pytest.fixture
def cpu_dispatch(monkeypatch):
    """Lets gpu.py hand CPU tensors to the (interpreted) kernels, as it does CUDA tensors."""
    monkeypatch.setattr(gpu, "_usable", lambda device: True)


def _dispatch_kwargs(x, f, w, **over):
    kw = dict(input=x, guide=f, weight=w, bias=None, stride=(1, 1), padding=(2, 2), dilation=(1, 1),
              kernel_size=(5, 5), kernel_type="gaussian", smooth_weight=None, normalize_kernel=False,
              normalize_mask=None, mask=None, kernel=None, inv_alpha=None, inv_lambda=None, channel_wise=False)
    kw.update(over)
    return kw


def test_dispatch_runs_supported_calls_and_declines_the_rest(cpu_dispatch):
    x, f, w = rand(1, 2, 6, 7, seed=1), rand(1, 3, 6, 7, seed=2), rand(3, 2, 5, 5, seed=3)
    out = gpu.pac_conv2d(**_dispatch_kwargs(x, f, w, normalize_kernel=True))
    torch.testing.assert_close(out, R.pac_conv2d(x, f, w, padding=2, normalize_kernel=True), atol=1e-5, rtol=1e-5)
    declined = [
        dict(mask=torch.ones(1, 1, 6, 7)),
        dict(kernel=torch.ones(1, 1, 5, 5, 6, 7), guide=None),
        dict(smooth_weight=torch.ones(3, 3) / 9),
        dict(channel_wise=True),
        dict(input=x.double(), guide=f.double(), weight=w.double()),
        dict(weight=w.half()),
        dict(input=rand(1, 129, 6, 7), weight=rand(3, 129, 5, 5)),
        dict(guide=rand(1, 65, 6, 7)),
    ]
    for over in declined:
        assert gpu.pac_conv2d(**_dispatch_kwargs(x, f, w, **over)) is None, over
    with gpu.disabled():
        assert gpu.pac_conv2d(**_dispatch_kwargs(x, f, w)) is None
    assert gpu.unsupported(**_dispatch_kwargs(x, f, w, mask=torch.ones(1, 1, 6, 7))) == "mask"


def test_dispatch_under_autocast_casts_the_filter(cpu_dispatch):
    # Under autocast the activations are low precision but the parameters stay float32.
    x, f = rand(1, 2, 6, 7, seed=1, dtype=torch.bfloat16), rand(1, 3, 6, 7, seed=2, dtype=torch.bfloat16)
    w, b = rand(3, 2, 5, 5, seed=3), rand(3, seed=4)
    assert gpu.pac_conv2d(**_dispatch_kwargs(x, f, w, bias=b)) is None  # mixed dtypes, no autocast
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = gpu.pac_conv2d(**_dispatch_kwargs(x, f, w, bias=b))
    assert out.dtype == torch.bfloat16
    ref = R.pac_conv2d(x.double(), f.double(), w.bfloat16().double(), b.bfloat16().double(), padding=2)
    assert_close_rel(out, ref, 3e-2)


def test_dispatch_transposed_layer(cpu_dispatch):
    x, f, w = rand(1, 2, 3, 4, seed=1), rand(1, 3, 6, 8, seed=2), rand(2, 3, 5, 5, seed=3)
    kw = _dispatch_kwargs(x, f, w, output_padding=(1, 1), stride=(2, 2))
    out = gpu.pac_conv_transpose2d(**kw)
    ref = R.pac_conv_transpose2d(x, f, w, stride=2, padding=2, output_padding=1)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    assert gpu.pac_conv_transpose2d(**dict(kw, mask=torch.ones(1, 1, 3, 4))) is None


def test_without_cuda_the_functional_path_never_dispatches(monkeypatch):
    calls = []
    monkeypatch.setattr(gpu, "_usable", lambda device: calls.append(device) or False)
    x, f, w = rand(1, 2, 6, 7), rand(1, 3, 6, 7), rand(3, 2, 5, 5)
    PF.pac_conv2d(x, f, w, padding=2)
    assert calls == []  # CPU tensors are never offered to gpu.py


# ------------------------------------------------------------------------------ torch.library


def _op_args(transposed=True, z_mode=2, dtype=torch.float32, device="cpu"):
    # 3x3 filters: opcheck runs the operator and its backward many times.
    if transposed:
        x, f, w = rand(1, 2, 3, 4, seed=1), rand(1, 3, 6, 8, seed=2), rand(2, 3, 3, 3, seed=3)
        geom = ([2, 2], [1, 1], [1, 1], [1, 1])
    else:
        x, f, w = rand(1, 2, 5, 6, seed=1), rand(1, 3, 5, 6, seed=2), rand(3, 2, 3, 3, seed=3)
        geom = ([1, 1], [1, 1], [0, 0], [1, 1])
    b = rand(3, seed=4)
    kp = torch.tensor([0.3, -0.7])
    ts = [t.to(device=device, dtype=dtype).requires_grad_() for t in (x, f, w, b)] + [kp.to(device).requires_grad_()]
    return (*ts, transposed, *geom, 1, z_mode)


@pytest.mark.parametrize("transposed", [True, pytest.param(False, marks=slow)])
def test_opcheck(transposed):
    # Schema, fake (meta) implementation, autograd registration and AOT dispatch.
    torch.library.opcheck(torch.ops.pacup.pac_fused.default, _op_args(transposed))


@slow
def test_opcheck_backward_with_some_gradients_not_needed():
    x, f, w, b, kp, transposed, *geom, ktype, z_mode = (a.detach() if isinstance(a, torch.Tensor) else a
                                                          for a in _op_args(True))
    out, z = torch.ops.pacup.pac_fused(x, f, w, b, kp, transposed, *geom, ktype, z_mode)
    # The backward operator has no autograd formula of its own (no double backward).
    args = (rand(*out.shape, seed=5), z, x, f, w, kp, transposed, *geom, ktype, z_mode, [True, False, True, False])
    torch.library.opcheck(torch.ops.pacup.pac_fused_backward.default, args)
    gx, gg, gw, gk = torch.ops.pacup.pac_fused_backward(*args)
    assert gx.shape == x.shape and gw.shape == w.shape and gg.numel() == gk.numel() == 0


def test_export_keeps_the_fused_operator():
    layer = PacConvTranspose2d(2, 3, 5, stride=2, padding=2, output_padding=1, normalize_kernel=True)

    class Fused(torch.nn.Module):
        def forward(self, x, f):
            return T.pac_conv_transpose2d(x, f, layer.weight, layer.bias, 2, 2, 1, normalize_kernel=True)

    x, f = rand(1, 2, 3, 4, seed=1), rand(1, 3, 6, 8, seed=2)
    ep = torch.export.export(Fused(), (x, f))
    assert any("pacup.pac_fused" in str(n.target) for n in ep.graph.nodes)
    torch.testing.assert_close(ep.module()(x, f), layer(x, f), atol=1e-5, rtol=1e-5)


@pytest.mark.slow
def test_compile_forward_and_backward():
    layer = PacConv2d(2, 3, 5, padding=2, normalize_kernel=True)
    x, f = rand(1, 2, 5, 6, seed=1), rand(1, 3, 5, 6, seed=2).requires_grad_()

    def fused(x, f):
        return T.pac_conv2d(x, f, layer.weight, layer.bias, padding=2, normalize_kernel=True)

    out = torch.compile(fused, backend="aot_eager", fullgraph=True)(x, f)
    (grad,) = torch.autograd.grad(out.square().sum(), f)
    ref = layer(x, f)
    (ref_grad,) = torch.autograd.grad(ref.square().sum(), f)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(grad, ref_grad, atol=1e-4, rtol=1e-4)


# ------------------------------------------------------------------------------ GPU


@pytest.mark.gpu
@needs_cuda
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("layer", ["conv", "transposed"])
def test_gpu_full_size_matches_pytorch_path(layer, dtype, monkeypatch):
    """The network's layers at 480x640 output, fused vs the PyTorch fast path on the GPU."""
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)  # full float32 on both sides
    dev = "cuda"
    low = (480, 640) if layer == "conv" else (240, 320)
    x, w = rand(1, 32, *low, seed=1, dtype=dtype, device=dev), rand(32, 32, 5, 5, seed=2, dtype=dtype, device=dev)
    args, fn = ((1, 2, 1), PF.pac_conv2d) if layer == "conv" else ((2, 2, 1, 1), PF.pac_conv_transpose2d)
    w = w * 0.05
    f, b = rand(1, 16, 480, 640, seed=3, dtype=dtype, device=dev), rand(32, seed=4, dtype=dtype, device=dev)
    assert gpu.available()
    for kw in (dict(), dict(normalize_kernel=True)):
        out, grads = run_with_grads(fn, [x, f, w, b], args, kw)
        with gpu.disabled():
            ref, ref_grads = run_with_grads(fn, [x.float(), f.float(), w.float(), b.float()], args, kw,
                                            grad_out=rand(*out.shape, seed=99, device=dev))
        tol = 1e-4 if dtype == torch.float32 else 2e-2
        assert_close_rel(out, ref, tol)
        for g, rg in zip(grads, ref_grads):
            assert_close_rel(g, rg, 10 * tol)


@pytest.mark.gpu
@needs_cuda
def test_gpu_functional_dispatches_to_the_fused_operator(monkeypatch):
    calls = []
    real = T.pac_conv_transpose2d
    monkeypatch.setattr(T, "pac_conv_transpose2d", lambda *a, **k: calls.append(1) or real(*a, **k))
    layer = PacConvTranspose2d(8, 8, 5, stride=2, padding=2, output_padding=1).cuda()
    layer(rand(1, 8, 16, 16, device="cuda"), rand(1, 3, 32, 32, device="cuda"))
    assert calls == [1]
    with gpu.disabled():
        layer(rand(1, 8, 16, 16, device="cuda"), rand(1, 3, 32, 32, device="cuda"))
    assert calls == [1]


@pytest.mark.gpu
@needs_cuda
def test_gpu_opcheck_and_compile():
    args = _op_args(True, device="cuda")
    torch.library.opcheck(torch.ops.pacup.pac_fused.default, args)
    layer = PacConvTranspose2d(2, 3, 5, stride=2, padding=2, output_padding=1, normalize_kernel=True).cuda()
    x, f = rand(1, 2, 30, 40, device="cuda"), rand(1, 3, 60, 80, device="cuda").requires_grad_()
    out = torch.compile(layer)(x, f)
    with gpu.disabled():
        ref = layer(x, f)
    torch.testing.assert_close(out, ref, atol=1e-4, rtol=1e-4)
    out.sum().backward()
    assert f.grad is not None


# ------------------------------------------------------------------------------ GPU code generation


@slow
@pytest.mark.parametrize("arch", [90, 80])
def test_kernels_compile_for_nvidia_gpus_without_a_gpu(arch):
    """The interpreter runs the kernels' Python, not Triton's compiler: compile them to
    cubin (Triton ships ptxas) for the network's layers, forward and backward, fp16 and fp32,
    so that code the compiler rejects is caught on machines without a GPU."""
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource
    from triton.compiler import compile as triton_compile

    from pacup.ops.triton import kernels

    if not hasattr(kernels.pside_kernel, "arg_names") or type(kernels.pside_kernel).__name__ != "JITFunction":
        pytest.skip("the process runs Triton in interpreter mode")
    fp32_ptrs = {"z_ptr", "s_ptr", "gg_ptr", "kg_ptr", "kp_ptr", "dw_ptr"}

    def build(fn, dtype, constexprs, warps):
        sig = {}
        for name in fn.arg_names:
            if name in constexprs:
                sig[name] = "constexpr"
            elif name.endswith("_ptr"):
                sig[name] = "*fp32" if name in fp32_ptrs else f"*{dtype}"
            else:
                sig[name] = "i32"
        src = ASTSource(fn, sig, constexprs=constexprs)
        return triton_compile(src, target=GPUTarget("cuda", arch, 32), options=dict(num_warps=warps))

    for transposed in (True, False):
        geo = dict(KH=5, KW=5, SY=2 if transposed else 1, SX=2 if transposed else 1, PY=2, PX=2, DY=1, DX=1,
                   BCI=32, BCO=32, BCF=16, TRANSPOSED=transposed)
        for dtype, prec in (("fp16", "ieee"), ("fp32", "tf32")):  # as _dot_precision on CUDA
            common = dict(geo, KTYPE=0, EPS=1e-4, DOT_PREC=prec)
            (bp, warps) = T._PSIDE
            for mode in (0, 1):
                c = dict(common, BLOCK_P=bp, MODE=mode, ZMODE=2, HAS_BIAS=mode == 0, NEED_KP=False)
                assert build(kernels.pside_kernel, dtype, c, warps).asm["cubin"]
            if dtype == "fp32":
                continue  # the backward kernels differ from fp16 only in operand types
            (bp, warps) = T._QSIDE
            c = dict(common, BLOCK_P=bp, ZMODE=2, NEED_X=True, NEED_G=True)
            assert build(kernels.qside_kernel, dtype, c, warps).asm["cubin"]
            (bp, warps) = T._DWEIGHT
            assert build(kernels.dweight_kernel, dtype, dict(common, BLOCK_P=bp), warps).asm["cubin"]
