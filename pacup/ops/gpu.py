"""Dispatch of PAC calls to fused GPU kernels.

``pac_conv2d`` and ``pac_conv_transpose2d`` offer every CUDA call here first, with their
arguments already validated. A function returns None when it does not handle the call: the
PyTorch fast path then runs. The fused kernels (:mod:`pacup.ops.triton`, registered as
``torch.ops.pacup.pac_fused``) handle:

- the gaussian and the inverse kernels (``inv_*``, symmetric or ``_asym``, fixed or with
  ``inv_alpha`` / ``inv_lambda`` tensors, whose gradients they compute too);
- any stride, padding, dilation and output_padding, odd kernel sizes;
- no normalisation, ``normalize_kernel`` and ``normalize_mask`` (without a mask it counts
  the in-image samples);
- pooling (``weight=None``) and shared (1, 1, kh, kw) filters, as diagonal filters;
- float32, float16 and bfloat16 (accumulation in float32), with up to 128 input and output
  channels and 64 guide channels.

Under autocast a float32 weight and bias are cast to the input's dtype. They fall back
(return None) for: ``mask=``, a precomputed ``kernel=``, ``smooth_weight`` (smoothed centre
features), ``channel_wise`` kernels, other dtypes (float64), a weight or bias whose dtype
differs from the input's outside autocast, larger channel counts, tensors of 2**31 elements
or more per batch element, and whenever Triton is not importable or the GPU is older than
compute capability 7.0. ``disabled()`` or ``PACUP_DISABLE_FUSED=1`` switch the fused kernels
off (for comparisons and debugging).
"""

from __future__ import annotations

import contextlib
import os

import torch

MAX_CHANNELS = 128
MAX_GUIDE_CHANNELS = 64
_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
_MAX_NUMEL = 2**31 - 1

_enabled = [os.environ.get("PACUP_DISABLE_FUSED", "") in ("", "0")]
_ops_module = []  # [module] once imported, [None] if Triton is unusable
_device_ok: dict = {}


@contextlib.contextmanager
def disabled():
    """Within this block CUDA calls take the PyTorch path."""
    old = _enabled[0]
    _enabled[0] = False
    try:
        yield
    finally:
        _enabled[0] = old


def _ops():
    if not _ops_module:
        try:
            import triton  # noqa: F401

            from .triton import ops
        except ImportError:
            ops = None
        _ops_module.append(ops)
    return _ops_module[0]


def _usable(device: torch.device) -> bool:
    """Fused kernels run on this device: CUDA, Triton importable, compute capability >= 7.0."""
    if device.type != "cuda":
        return False
    key = device.index if device.index is not None else torch.cuda.current_device()
    if key not in _device_ok:
        _device_ok[key] = _ops() is not None and torch.cuda.get_device_capability(key) >= (7, 0)
    return _device_ok[key]


def available(device="cuda") -> bool:
    """Whether CUDA calls on ``device`` would run the fused kernels."""
    return _enabled[0] and torch.cuda.is_available() and _usable(torch.device(device))


def unsupported(*, input, guide, weight, transposed=False, bias=None, smooth_weight=None, mask=None, kernel=None,
                inv_alpha=None, inv_lambda=None, channel_wise=False, **_) -> str | None:
    """Why the fused kernels do not handle these (validated) arguments, or None if they do."""
    if mask is not None:
        return "mask"
    if kernel is not None:
        return "precomputed kernel"
    if smooth_weight is not None:
        return "smoothed centre features"
    if channel_wise:
        return "channel-wise kernels"
    if guide is None:
        return "no guide"
    if input.dtype not in _DTYPES:
        return f"dtype {input.dtype}"
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and t.dtype != input.dtype:
            return f"{name} dtype {t.dtype} differs from input dtype {input.dtype}"
    for name, t in (("inv_alpha", inv_alpha), ("inv_lambda", inv_lambda)):
        if isinstance(t, torch.Tensor) and t.numel() != 1:
            return f"{name} with {t.numel()} elements"
    cin = input.shape[1]
    if weight is None or (weight.shape[0] == 1 and weight.shape[1] == 1):
        cout = cin  # pooling, shared filters
    else:
        cout = weight.shape[1] if transposed else weight.shape[0]
    if max(cin, cout) > MAX_CHANNELS:
        return f"more than {MAX_CHANNELS} channels"
    if guide.shape[1] > MAX_GUIDE_CHANNELS:
        return f"more than {MAX_GUIDE_CHANNELS} guide channels"
    per_sample = max(input[0].numel(), guide[0].numel(), cout * guide.shape[-2] * guide.shape[-1])
    if per_sample > _MAX_NUMEL:
        return "a tensor of 2**31 elements or more per batch element"
    return None


def _autocast(kwargs):
    """Under autocast the parameters stay float32 while the activations are float16 or
    bfloat16: compute in the activations' dtype, as autocast does for convolutions."""
    x = kwargs["input"]
    if torch.is_autocast_enabled(x.device.type):
        for name in ("weight", "bias"):
            t = kwargs.get(name)
            if t is not None and t.dtype != x.dtype and t.is_floating_point():
                kwargs[name] = t.to(x.dtype)
    return kwargs


def pac_conv2d(**kwargs):
    """Fused ``pac_conv2d`` for CUDA tensors, or None to fall back."""
    if not (_enabled[0] and _usable(kwargs["input"].device)):
        return None
    kwargs = _autocast(kwargs)
    if unsupported(**kwargs) is not None:
        return None
    return _ops().pac_conv2d(
        kwargs["input"], kwargs["guide"], kwargs["weight"], kwargs.get("bias"), kwargs["stride"], kwargs["padding"],
        kwargs["dilation"], kernel_type=kwargs["kernel_type"], normalize_kernel=kwargs["normalize_kernel"],
        normalize_mask=kwargs["normalize_mask"], inv_alpha=kwargs.get("inv_alpha"),
        inv_lambda=kwargs.get("inv_lambda"), kernel_size=kwargs["kernel_size"],
    )


def pac_conv_transpose2d(**kwargs):
    """Fused ``pac_conv_transpose2d`` for CUDA tensors, or None to fall back."""
    if not (_enabled[0] and _usable(kwargs["input"].device)):
        return None
    kwargs = _autocast(kwargs)
    if unsupported(transposed=True, **kwargs) is not None:
        return None
    return _ops().pac_conv_transpose2d(
        kwargs["input"], kwargs["guide"], kwargs["weight"], kwargs.get("bias"), kwargs["stride"], kwargs["padding"],
        kwargs["output_padding"], kwargs["dilation"], kernel_type=kwargs["kernel_type"],
        normalize_kernel=kwargs["normalize_kernel"], normalize_mask=kwargs["normalize_mask"],
        inv_alpha=kwargs.get("inv_alpha"), inv_lambda=kwargs.get("inv_lambda"),
    )
