"""Pieces shared by the reference and the fast PAC implementations.

Only the parts that are pure definitions live here: parsing the kernel-type strings, the
adapting kernel K as a formula on two feature tensors, the smoothing kernels for the centre
feature, and argument validation. How windows are gathered (unfold vs. shifted slices) is
what differs between the two implementations and stays in their own modules.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import torch
import torch.nn.functional as F

# Added to the squared feature distance of the inverse kernel so that a negative power
# stays finite at distance 0 (the window centre).
INV_EPS = 1e-4


@dataclass(frozen=True)
class KernelType:
    """A parsed adapting-kernel description.

    Strings accepted (the official code's names):
      ``"gaussian"``                       K = exp(-0.5 * ||f_p - f_q||^2)
      ``"inv_{alpha}_{lambda}"``           K = alpha + (||f_p - f_q||^2 + eps)^(lambda / 2),
                                           alpha and lambda learnable (initial values given)
      ``"inv_{alpha}_{lambda}_asym"``      the same on max(0, f_q - f_p) (asymmetric)
      ``..._fixed``                        alpha and lambda are constants, not parameters
    """

    name: str
    alpha: float = 0.0
    lam: float = 0.0
    asymmetric: bool = False
    learnable: bool = False

    @property
    def is_inverse(self) -> bool:
        return self.name == "inverse"


_INV_RE = re.compile(r"^inv_([-+0-9.eE]+)_([-+0-9.eE]+)((?:_asym|_fixed)*)$")


def parse_kernel_type(kernel_type: str) -> KernelType:
    if not isinstance(kernel_type, str):
        raise ValueError(f"kernel_type must be a string, got {type(kernel_type).__name__}")
    if kernel_type == "gaussian":
        return KernelType("gaussian")
    m = _INV_RE.match(kernel_type)
    if m:
        try:
            alpha, lam = float(m.group(1)), float(m.group(2))
        except ValueError:
            m = None
        else:
            flags = m.group(3)
            return KernelType("inverse", alpha, lam, "_asym" in flags, "_fixed" not in flags)
    raise ValueError(
        f"unknown kernel_type {kernel_type!r}: expected 'gaussian' or "
        "'inv_{alpha}_{lambda}' with optional '_asym' and '_fixed' suffixes (e.g. 'inv_0.01_0.5')"
    )


def adapting_kernel(
    centre: torch.Tensor,
    tap: torch.Tensor,
    kernel_type: KernelType,
    inv_alpha: torch.Tensor | None = None,
    inv_lambda: torch.Tensor | None = None,
    channel_wise: bool = False,
    dim: int = 1,
) -> torch.Tensor:
    """K(f_p, f_q) for broadcastable feature tensors whose dimension ``dim`` holds the
    feature channels.

    Returns a tensor with dim 1 of size 1 (summed over feature channels) or, with
    ``channel_wise``, one kernel per channel.
    """
    # Without autograd the temporaries are reused in place (fewer passes over memory).
    inplace = not torch.is_grad_enabled()
    diff = tap - centre
    if kernel_type.asymmetric:
        diff = diff.clamp_min_(0) if inplace else diff.clamp_min(0)
    d2 = diff.square_() if inplace else diff * diff
    if not channel_wise:
        d2 = d2.sum(dim=dim, keepdim=True)
    if kernel_type.name == "gaussian":
        return d2.mul_(-0.5).exp_() if inplace else torch.exp(-0.5 * d2)
    alpha = inv_alpha if inv_alpha is not None else kernel_type.alpha
    lam = inv_lambda if inv_lambda is not None else kernel_type.lam
    return alpha + torch.pow(d2 + INV_EPS, 0.5 * lam)


# --------------------------------------------------------------------------- smoothing

_SMOOTH_RE = re.compile(r"^(average|gaussian|full)_(\d+)$")


def parse_smooth_kernel_type(smooth_kernel_type: str) -> tuple[str, int]:
    """``'none'`` or ``'average_{k}'``, ``'gaussian_{k}'`` (binomial), ``'full_{k}'`` (learnable)."""
    if smooth_kernel_type in (None, "none"):
        return "none", 1
    m = _SMOOTH_RE.match(str(smooth_kernel_type))
    if not m or int(m.group(2)) % 2 == 0 or int(m.group(2)) < 1:
        raise ValueError(
            f"unknown smooth_kernel_type {smooth_kernel_type!r}: expected 'none', "
            "'average_{k}', 'gaussian_{k}' or 'full_{k}' with odd k (e.g. 'gaussian_3')"
        )
    return m.group(1), int(m.group(2))


def smooth_kernel_init(kind: str, k: int) -> torch.Tensor:
    """The (k, k) smoothing filter for the centre feature, summing to 1."""
    if kind == "gaussian":
        row = torch.tensor([math.comb(k - 1, i) for i in range(k)], dtype=torch.float64)
    else:  # average, and the starting point of a learnable 'full' kernel
        row = torch.ones(k, dtype=torch.float64)
    w = torch.outer(row, row)
    return (w / w.sum()).float()


def smooth_centre(guide: torch.Tensor, smooth_weight: torch.Tensor | None) -> torch.Tensor:
    """Smooths each guide channel with the same (k, k) filter, zero padding, same size."""
    if smooth_weight is None:
        return guide
    k = smooth_weight.shape[-1]
    c = guide.shape[1]
    w = smooth_weight.to(guide.dtype).reshape(1, 1, k, k).expand(c, 1, k, k)
    return F.conv2d(guide, w, padding=k // 2, groups=c)


# --------------------------------------------------------------------------- validation


def pair(v, name: str) -> tuple[int, int]:
    if isinstance(v, int):
        return (v, v)
    try:
        t = tuple(int(x) for x in v)
    except TypeError:
        raise ValueError(f"{name} must be an int or a pair of ints, got {v!r}") from None
    if len(t) != 2:
        raise ValueError(f"{name} must be an int or a pair of ints, got {v!r}")
    return t


def check_4d(t: torch.Tensor, name: str) -> None:
    if not isinstance(t, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if t.dim() != 4:
        raise ValueError(f"{name} must have shape (B, C, H, W), got {tuple(t.shape)}")


def check_conv_args(kernel_size, stride, padding, dilation, output_padding=(0, 0)):
    for name, v in (("kernel_size", kernel_size), ("stride", stride), ("dilation", dilation)):
        if min(v) < 1:
            raise ValueError(f"{name} must be positive, got {v}")
    if kernel_size[0] % 2 == 0 or kernel_size[1] % 2 == 0:
        raise ValueError(
            f"kernel_size must be odd (the adapting kernel compares every tap with the window "
            f"centre), got {kernel_size}"
        )
    if min(padding) < 0:
        raise ValueError(f"padding must be non-negative, got {padding}")
    for i in range(2):
        if output_padding[i] < 0 or (
            output_padding[i] >= stride[i] and output_padding[i] >= dilation[i]
        ):
            raise ValueError(
                f"output_padding must be non-negative and smaller than stride or dilation, "
                f"got output_padding={output_padding}, stride={stride}, dilation={dilation}"
            )


def check_guide(guide, input, size, channel_wise, what: str) -> None:
    check_4d(guide, "guide")
    if guide.shape[0] != input.shape[0]:
        raise ValueError(
            f"guide batch size {guide.shape[0]} does not match input batch size {input.shape[0]}"
        )
    if tuple(guide.shape[-2:]) != tuple(size):
        raise ValueError(
            f"guide must have the spatial size of the {what} {tuple(size)}, "
            f"got {tuple(guide.shape[-2:])}"
        )
    if channel_wise and guide.shape[1] != input.shape[1]:
        raise ValueError(
            f"channel_wise kernels need one guide channel per input channel: "
            f"guide has {guide.shape[1]}, input has {input.shape[1]}"
        )
    if guide.device != input.device:
        raise ValueError(f"guide is on {guide.device}, input on {input.device}: they must be on the same device")
    if not guide.is_floating_point():
        raise ValueError(f"guide must be a floating-point tensor, got {guide.dtype}")


def check_mask(mask, input) -> None:
    check_4d(mask, "mask")
    if mask.shape[1] != 1 or mask.shape[0] != input.shape[0] or mask.shape[-2:] != input.shape[-2:]:
        raise ValueError(
            f"mask must have shape (B, 1, H, W) = {(input.shape[0], 1, *input.shape[-2:])} "
            f"like the input, got {tuple(mask.shape)}"
        )


def check_kernel(kernel, input, k, size) -> None:
    if not isinstance(kernel, torch.Tensor) or kernel.dim() != 6:
        raise ValueError(
            "kernel must be a tensor of shape (B, 1 or C, kh, kw, H_out, W_out), got "
            f"{tuple(kernel.shape) if isinstance(kernel, torch.Tensor) else type(kernel).__name__}"
        )
    b, ck, kh, kw, h, w = kernel.shape
    if b != input.shape[0] or ck not in (1, input.shape[1]) or (kh, kw) != tuple(k) or (h, w) != tuple(size):
        raise ValueError(
            f"kernel must have shape (B={input.shape[0]}, 1 or {input.shape[1]}, {k[0]}, {k[1]}, "
            f"{size[0]}, {size[1]}), got {tuple(kernel.shape)}"
        )


def check_weight(weight, input, transposed: bool) -> bool:
    """Validates the filter; returns True for a shared (1, 1, kh, kw) filter."""
    if weight.dim() != 4:
        raise ValueError(f"weight must have 4 dimensions, got shape {tuple(weight.shape)}")
    cin = input.shape[1]
    if weight.shape[0] == 1 and weight.shape[1] == 1 and cin > 1:
        return True
    w_in = weight.shape[0] if transposed else weight.shape[1]
    if w_in != cin:
        layout = "(in, out, kh, kw)" if transposed else "(out, in, kh, kw)"
        raise ValueError(
            f"weight {tuple(weight.shape)} (layout {layout}) expects {w_in} input channels, "
            f"input has {cin}"
        )
    return False


def conv_out_size(size, k, stride, padding, dilation):
    return tuple((size[i] + 2 * padding[i] - dilation[i] * (k[i] - 1) - 1) // stride[i] + 1 for i in range(2))


def conv_transpose_out_size(size, k, stride, padding, output_padding, dilation):
    return tuple(
        (size[i] - 1) * stride[i] - 2 * padding[i] + dilation[i] * (k[i] - 1) + output_padding[i] + 1
        for i in range(2)
    )
