"""The fused PAC operators: ``torch.ops.pacup.pac_fused`` and its backward.

Both are ``torch.library.custom_op`` operators with fake (meta) implementations and an
autograd formula, so ``torch.compile`` and ``torch.export`` keep them as single nodes of
known shape. (``torch.library.triton_op`` would let Inductor look inside; it is not used
because its decomposition cannot run the kernels under Triton's CPU interpreter, which is
how the kernels are tested without a GPU. The kernels are compute-bound and fused already;
Inductor would only add the bias-free epilogue fusions around them.)

Device routing: CUDA tensors run the compiled kernels; CPU tensors run the very same
kernels under Triton's interpreter (a second, interpreted copy of ``kernels.py`` is loaded
with ``TRITON_INTERPRET=1`` set only while it is defined). The interpreter is slow and meant
for tests.
"""

import importlib.util
import os
import sys
import threading
from pathlib import Path
from typing import Optional

import torch

from .. import _common as C

__all__ = ["pac_conv2d", "pac_conv_transpose2d", "KERNEL_TYPES"]

# kernel_type codes shared with kernels.py
KERNEL_TYPES = {"gaussian": 0, "inverse": 1, "inverse_asym": 2}

# (pixels per program, warps) per kernel. Chosen so that ptxas (sm_90, fp16/bf16/fp32, 32
# channels, 16 guide channels) reports no register spills; not tuned on a GPU (none was
# available when this was written).
_PSIDE = (64, 8)
_QSIDE = (32, 4)
_DWEIGHT = (64, 4)
# Programs of the weight-gradient kernel per batch element and tap: enough to fill a GPU.
_DW_PROGRAMS = 2048

_lock = threading.Lock()
_interpreted = None


def _kernels(device: torch.device):
    """The kernel module for ``device``: compiled for CUDA, interpreted for the CPU."""
    if device.type == "cuda":
        from . import kernels

        return kernels
    global _interpreted
    with _lock:
        if _interpreted is None:
            _interpreted = _load_interpreted()
    return _interpreted


def _load_interpreted():
    from triton import knobs

    if knobs.runtime.interpret:
        # The whole process interprets (TRITON_INTERPRET=1 before Triton was imported).
        from . import kernels

        return kernels
    name = __package__ + "._kernels_interpreted"
    spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("kernels.py"))
    module = importlib.util.module_from_spec(spec)
    old = os.environ.get("TRITON_INTERPRET")
    # triton.jit reads the flag when a function is decorated; restored right after.
    os.environ["TRITON_INTERPRET"] = "1"
    try:
        sys.modules[name] = module
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    finally:
        if old is None:
            del os.environ["TRITON_INTERPRET"]
        else:
            os.environ["TRITON_INTERPRET"] = old
    return module


def _pow2(n: int, lo: int) -> int:
    return max(lo, 1 << max(0, int(n) - 1).bit_length())


def _cdiv(a, b):
    return (a + b - 1) // b


def _out_size(h, w, kh, kw, transposed, stride, padding, output_padding, dilation):
    if transposed:
        return C.conv_transpose_out_size((h, w), (kh, kw), stride, padding, output_padding, dilation)
    return C.conv_out_size((h, w), (kh, kw), stride, padding, dilation)


def _dot_precision(device: torch.device, dtype: torch.dtype) -> str:
    if device.type != "cuda":
        # Triton's interpreter cannot multiply bfloat16 blocks (see kernels._mm).
        return "upcast" if dtype == torch.bfloat16 else "ieee"
    # Like PyTorch's own convolutions: TF32 for float32 on CUDA unless switched off.
    if dtype == torch.float32 and torch.backends.cudnn.allow_tf32:
        return "tf32"
    return "ieee"


def _tap_major(weight: torch.Tensor, transposed: bool) -> torch.Tensor:
    """(kh, kw, Cin, Cout) contiguous: one [Cin, Cout] matrix per tap."""
    return (weight.permute(2, 3, 0, 1) if transposed else weight.permute(2, 3, 1, 0)).contiguous()


def _check(input, guide, weight, bias, kparams, transposed, stride, padding, output_padding, dilation, z_mode):
    """Shapes the kernels rely on for memory safety (pacup.ops.functional validates more)."""
    if input.dim() != 4 or guide.dim() != 4 or weight.dim() != 4:
        raise ValueError("input, guide and weight must be 4-D")
    cin_w, cout = (weight.shape[0], weight.shape[1]) if transposed else (weight.shape[1], weight.shape[0])
    if cin_w != input.shape[1]:
        raise ValueError(f"weight {tuple(weight.shape)} does not fit {input.shape[1]} input channels")
    if weight.shape[-2] % 2 == 0 or weight.shape[-1] % 2 == 0:
        raise ValueError(f"kernel size must be odd, got {tuple(weight.shape[-2:])}")
    for name, v in (("stride", stride), ("padding", padding), ("output_padding", output_padding),
                    ("dilation", dilation)):
        if len(v) != 2 or min(v) < (1 if name in ("stride", "dilation") else 0):
            raise ValueError(f"bad {name} {v}")
    out_hw = _out_size(input.shape[2], input.shape[3], weight.shape[-2], weight.shape[-1], transposed, stride,
                       padding, output_padding, dilation)
    want = tuple(out_hw) if transposed else tuple(input.shape[-2:])
    if guide.shape[0] != input.shape[0] or tuple(guide.shape[-2:]) != want:
        raise ValueError(f"guide {tuple(guide.shape)} must be (B={input.shape[0]}, Cf, {want[0]}, {want[1]})")
    if min(out_hw) < 1:
        raise ValueError(f"empty output {tuple(out_hw)}")
    if bias is not None and bias.shape != (cout,):
        raise ValueError(f"bias must have shape ({cout},), got {tuple(bias.shape)}")
    if kparams is not None and kparams.shape != (2,):
        raise ValueError(f"kparams must have shape (2,), got {tuple(kparams.shape)}")
    if z_mode not in (0, 1, 2):
        raise ValueError(f"z_mode must be 0, 1 or 2, got {z_mode}")
    for t in (guide, weight, bias):
        if t is not None and (t.dtype != input.dtype or t.device != input.device):
            raise ValueError("guide, weight and bias must have the input's dtype and device")


class _Geometry:
    def __init__(self, input, guide, weight, transposed, stride, padding, output_padding, dilation):
        self.b, self.cin, self.hi, self.wi = input.shape
        self.cf, self.hg, self.wg = guide.shape[1], guide.shape[2], guide.shape[3]
        self.kh, self.kw = weight.shape[-2:]
        self.cout = weight.shape[1] if transposed else weight.shape[0]
        self.transposed = transposed
        self.s, self.p, self.d = tuple(stride), tuple(padding), tuple(dilation)
        self.ho, self.wo = _out_size(self.hi, self.wi, self.kh, self.kw, transposed, self.s, self.p,
                                     tuple(output_padding), self.d)
        if transposed:
            self.noy, self.nox, self.nph = _cdiv(self.ho, self.s[0]), _cdiv(self.wo, self.s[1]), self.s[0] * self.s[1]
        else:
            self.noy, self.nox, self.nph = self.ho, self.wo, 1
        self.bci, self.bco, self.bcf = _pow2(self.cin, 16), _pow2(self.cout, 16), _pow2(self.cf, 2)

    def constexprs(self, config):
        block_p, warps = config
        return dict(
            TRANSPOSED=self.transposed, KH=self.kh, KW=self.kw, SY=self.s[0], SX=self.s[1],
            PY=self.p[0], PX=self.p[1], DY=self.d[0], DX=self.d[1],
            BLOCK_P=block_p, BCI=self.bci, BCO=self.bco, BCF=self.bcf, num_warps=warps,
        )

    def sizes(self):
        return (self.cin, self.cout, self.cf, self.hi, self.wi, self.hg, self.wg, self.ho, self.wo)


def _forward_impl(input, guide, weight, bias, kparams, transposed, stride, padding, output_padding, dilation,
                  kernel_type, z_mode):
    _check(input, guide, weight, bias, kparams, transposed, stride, padding, output_padding, dilation, z_mode)
    geo = _Geometry(input, guide, weight, transposed, stride, padding, output_padding, dilation)
    k = _kernels(input.device)
    x, g = input.contiguous(), guide.contiguous()
    w = _tap_major(weight, transposed)
    out = torch.empty(geo.b, geo.cout, geo.ho, geo.wo, dtype=input.dtype, device=input.device)
    z = (torch.empty(geo.b, 1, geo.ho, geo.wo, dtype=torch.float32, device=input.device) if z_mode
         else input.new_empty(0, dtype=torch.float32))
    if out.numel() == 0:
        return out, z
    kp = kparams.contiguous() if kparams is not None else x
    npix = geo.noy * geo.nox
    grid = (_cdiv(npix, _PSIDE[0]), geo.b * geo.nph)
    k.pside_kernel[grid](
        x, g, w, bias if bias is not None else x, kp, out, z if z_mode else out, x, x, x, x,
        *geo.sizes(), geo.nox, npix,
        MODE=0, KTYPE=kernel_type, ZMODE=z_mode, HAS_BIAS=bias is not None, EPS=C.INV_EPS, NEED_KP=False,
        DOT_PREC=_dot_precision(input.device, input.dtype), **geo.constexprs(_PSIDE),
    )
    return out, z


def _backward_impl(grad_out, z, input, guide, weight, kparams, transposed, stride, padding, output_padding,
                   dilation, kernel_type, z_mode, needs):
    need_x, need_g, need_w, need_kp = needs
    need_kp = need_kp and kernel_type != 0 and kparams is not None
    _check(input, guide, weight, None, kparams, transposed, stride, padding, output_padding, dilation, z_mode)
    geo = _Geometry(input, guide, weight, transposed, stride, padding, output_padding, dilation)
    if grad_out.shape != (geo.b, geo.cout, geo.ho, geo.wo) or (z_mode and z.shape != (geo.b, 1, geo.ho, geo.wo)):
        raise ValueError("grad_out / z do not match the forward's output")
    k = _kernels(input.device)
    x, g, go = input.contiguous(), guide.contiguous(), grad_out.contiguous()
    w = _tap_major(weight, transposed)
    zt = z.contiguous() if z_mode else x
    kp = kparams.contiguous() if kparams is not None else x
    prec = _dot_precision(input.device, input.dtype)
    common = dict(KTYPE=kernel_type, EPS=C.INV_EPS, DOT_PREC=prec)
    run = go.numel() > 0 and x.numel() > 0

    gg = kg = None
    # s = sum_o dL/dout * y / Z per output pixel, written by pside_kernel for qside_kernel.
    sp = x
    if need_g or need_kp:
        gg = torch.zeros(g.shape, dtype=torch.float32, device=g.device)
        kg = torch.zeros(2, dtype=torch.float32, device=g.device)
        if z_mode == 2:
            sp = torch.empty(geo.b, geo.ho, geo.wo, dtype=torch.float32, device=g.device)
        if run:
            npix = geo.noy * geo.nox
            k.pside_kernel[(_cdiv(npix, _PSIDE[0]), geo.b * geo.nph)](
                x, g, w, x, kp, x, zt, go, sp, gg, kg, *geo.sizes(), geo.nox, npix,
                MODE=1, ZMODE=z_mode, HAS_BIAS=False, NEED_KP=need_kp, **common, **geo.constexprs(_PSIDE),
            )
    gx = torch.empty_like(x) if need_x else None
    if (need_x or need_g) and run:
        k.qside_kernel[(_cdiv(geo.hi * geo.wi, _QSIDE[0]), geo.b)](
            x, g, w, kp, go, zt, sp, gx if need_x else x, gg if need_g else x, *geo.sizes(),
            ZMODE=z_mode, NEED_X=need_x, NEED_G=need_g, **common, **geo.constexprs(_QSIDE),
        )
    elif need_x:
        gx.zero_()
    gw = None
    if need_w:
        taps = geo.kh * geo.kw
        dw = torch.zeros(taps, geo.cout, geo.cin, dtype=torch.float32, device=x.device)
        if run:
            tiles = _cdiv(geo.noy * geo.nox, _DWEIGHT[0])
            nchunk = max(1, min(tiles, _DW_PROGRAMS // (taps * geo.b)))
            per_chunk = _cdiv(tiles, nchunk)
            nchunk = _cdiv(tiles, per_chunk)
            k.dweight_kernel[(taps, geo.b * nchunk)](
                x, g, kp, go, zt, dw, *geo.sizes(), nchunk, per_chunk, ZMODE=z_mode, **common,
                **geo.constexprs(_DWEIGHT),
            )
        dw = dw.reshape(geo.kh, geo.kw, geo.cout, geo.cin)
        gw = (dw.permute(3, 2, 0, 1) if transposed else dw.permute(2, 3, 0, 1)).to(weight.dtype).contiguous()
    # Gradients not asked for are distinct empty tensors (outputs of an operator may not alias).
    return (
        gx if need_x else input.new_empty(0),
        gg.to(guide.dtype) if need_g else input.new_empty(0),
        gw if need_w else input.new_empty(0),
        kg.to(kparams.dtype) if need_kp else input.new_empty(0),
    )


# ------------------------------------------------------------------------------ operators


@torch.library.custom_op("pacup::pac_fused", mutates_args=())
def pac_fused(
    input: torch.Tensor,
    guide: torch.Tensor,
    weight: torch.Tensor,
    bias: Optional[torch.Tensor],
    kparams: Optional[torch.Tensor],
    transposed: bool,
    stride: list[int],
    padding: list[int],
    output_padding: list[int],
    dilation: list[int],
    kernel_type: int,
    z_mode: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Fused PAC forward. Returns (output, Z) with Z (B, 1, H_out, W_out) float32, or an
    empty tensor when ``z_mode`` is 0 (no normalisation). ``weight`` has nn.Conv2d layout,
    or nn.ConvTranspose2d layout when ``transposed``. ``kparams`` = (alpha, lambda) of the
    inverse kernel."""
    return _forward_impl(input, guide, weight, bias, kparams, transposed, stride, padding, output_padding,
                         dilation, kernel_type, z_mode)


@pac_fused.register_fake
def _pac_fused_fake(input, guide, weight, bias, kparams, transposed, stride, padding, output_padding, dilation,
                    kernel_type, z_mode):
    b, _, h, w = input.shape
    kh, kw = weight.shape[-2:]
    cout = weight.shape[1] if transposed else weight.shape[0]
    ho, wo = _out_size(h, w, kh, kw, transposed, stride, padding, output_padding, dilation)
    out = input.new_empty(b, cout, ho, wo)
    z = input.new_empty((b, 1, ho, wo) if z_mode else (0,), dtype=torch.float32)
    return out, z


@torch.library.custom_op("pacup::pac_fused_backward", mutates_args=())
def pac_fused_backward(
    grad_out: torch.Tensor,
    z: Optional[torch.Tensor],
    input: torch.Tensor,
    guide: torch.Tensor,
    weight: torch.Tensor,
    kparams: Optional[torch.Tensor],
    transposed: bool,
    stride: list[int],
    padding: list[int],
    output_padding: list[int],
    dilation: list[int],
    kernel_type: int,
    z_mode: int,
    needs: list[bool],
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Gradients (input, guide, weight, kparams) of :func:`pac_fused` from dL/dout and the
    forward's Z (None when ``z_mode`` is 0). ``needs`` selects them; the others are
    returned as empty tensors. (The bias gradient is the sum of dL/dout.)"""
    return _backward_impl(grad_out, z, input, guide, weight, kparams, transposed, stride, padding, output_padding,
                          dilation, kernel_type, z_mode, needs)


@pac_fused_backward.register_fake
def _pac_fused_backward_fake(grad_out, z, input, guide, weight, kparams, transposed, stride, padding, output_padding,
                             dilation, kernel_type, z_mode, needs):
    need_x, need_g, need_w, need_kp = needs
    need_kp = need_kp and kernel_type != 0 and kparams is not None

    def like(t, need):
        return torch.empty_like(t) if need else input.new_empty(0)

    return like(input, need_x), like(guide, need_g), like(weight, need_w), (
        kparams.new_empty(2) if need_kp else input.new_empty(0)
    )


def _setup_context(ctx, inputs, output):
    (input, guide, weight, bias, kparams, transposed, stride, padding, output_padding, dilation,
     kernel_type, z_mode) = inputs
    _, z = output
    # The output itself is not saved (the backward recomputes what it needs), so in-place
    # operations on it, like a following ReLU(inplace=True), stay legal.
    ctx.save_for_backward(input, guide, weight, kparams, z if z_mode else None)
    ctx.args = (transposed, stride, padding, output_padding, dilation, kernel_type, z_mode)
    ctx.bias_dtype = None if bias is None else bias.dtype


def _backward(ctx, grad_out, grad_z):
    input, guide, weight, kparams, z = ctx.saved_tensors
    transposed, stride, padding, output_padding, dilation, kernel_type, z_mode = ctx.args
    need = ctx.needs_input_grad
    needs = [bool(need[0]), bool(need[1]), bool(need[2]), bool(need[4])]
    gx = gg = gw = gk = gb = None
    if any(needs):
        gx, gg, gw, gk = torch.ops.pacup.pac_fused_backward(
            grad_out, z, input, guide, weight, kparams, transposed, stride, padding, output_padding, dilation,
            kernel_type, z_mode, needs,
        )
    if ctx.bias_dtype is not None and need[3]:
        gb = grad_out.sum((0, 2, 3)).to(ctx.bias_dtype)
    return (
        gx if needs[0] else None,
        gg if needs[1] else None,
        gw if needs[2] else None,
        gb,
        gk if needs[3] and gk.numel() else None,
        None, None, None, None, None, None, None,
    )


pac_fused.register_autograd(_backward, setup_context=_setup_context)


# ------------------------------------------------------------------------------ wrappers


def _kernel_params(kernel_type, inv_alpha, inv_lambda, like):
    kt = C.parse_kernel_type(kernel_type)
    if not kt.is_inverse:
        return 0, None
    code = KERNEL_TYPES["inverse_asym" if kt.asymmetric else "inverse"]

    def scalar(v, default):
        if isinstance(v, torch.Tensor):
            return v.reshape(()).to(device=like.device, dtype=torch.float32)
        return torch.tensor(float(default if v is None else v), dtype=torch.float32, device=like.device)

    return code, torch.stack([scalar(inv_alpha, kt.alpha), scalar(inv_lambda, kt.lam)])


def _z_mode(normalize_kernel, normalize_mask):
    if normalize_mask is None:
        normalize_mask = normalize_kernel
    if normalize_kernel:
        return 2
    return 1 if normalize_mask else 0


def _dense_weight(weight, cin, kernel_size, like):
    """Pooling (weight None) and shared (1, 1, kh, kw) filters as per-channel diagonal filters."""
    eye = torch.eye(cin, dtype=like.dtype, device=like.device)[:, :, None, None]
    if weight is None:
        return eye.expand(cin, cin, *kernel_size).contiguous()
    return eye * weight


def pac_conv2d(input, guide, weight, bias=None, stride=1, padding=0, dilation=1, *, kernel_type="gaussian",
               normalize_kernel=False, normalize_mask=None, inv_alpha=None, inv_lambda=None, kernel_size=None):
    """Fused :func:`pacup.ops.functional.pac_conv2d` without mask, precomputed kernel,
    smoothing or channel-wise kernels (see :mod:`pacup.ops.gpu` for what falls back)."""
    s, p, d = C.pair(stride, "stride"), C.pair(padding, "padding"), C.pair(dilation, "dilation")
    if weight is None or (weight.shape[0] == 1 and weight.shape[1] == 1 and input.shape[1] > 1):
        k = C.pair(kernel_size if weight is None else weight.shape[-2:], "kernel_size")
        weight = _dense_weight(weight, input.shape[1], k, input)
    code, kparams = _kernel_params(kernel_type, inv_alpha, inv_lambda, input)
    out, _ = torch.ops.pacup.pac_fused(input, guide, weight, bias, kparams, False, list(s), list(p), [0, 0], list(d),
                                       code, _z_mode(normalize_kernel, normalize_mask))
    return out


def pac_conv_transpose2d(input, guide, weight, bias=None, stride=1, padding=0, output_padding=0, dilation=1, *,
                         kernel_type="gaussian", normalize_kernel=False, normalize_mask=None, inv_alpha=None,
                         inv_lambda=None):
    """Fused :func:`pacup.ops.functional.pac_conv_transpose2d` (sub-pixel phases, no
    inserted zeros), same restrictions as :func:`pac_conv2d`."""
    s, p, d = C.pair(stride, "stride"), C.pair(padding, "padding"), C.pair(dilation, "dilation")
    op = C.pair(output_padding, "output_padding")
    if weight.shape[0] == 1 and weight.shape[1] == 1 and input.shape[1] > 1:
        weight = _dense_weight(weight, input.shape[1], weight.shape[-2:], input)
    code, kparams = _kernel_params(kernel_type, inv_alpha, inv_lambda, input)
    out, _ = torch.ops.pacup.pac_fused(input, guide, weight, bias, kparams, True, list(s), list(p), list(op), list(d),
                                       code, _z_mode(normalize_kernel, normalize_mask))
    return out
