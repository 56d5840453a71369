"""nn.Module forms of the PAC operations. They hold configuration and parameters only; the
work is done by :mod:`pacup.ops.functional`.

Constructor argument names follow the official PAC code so that its users can switch:
``kernel_size, stride, padding, dilation, output_padding, bias, kernel_type,
smooth_kernel_type, normalize_kernel, shared_filters, filler``. Differences worth knowing:

- weights use PyTorch's layouts and orientation: ``PacConvTranspose2d`` with K = 1 equals
  ``nn.ConvTranspose2d`` for the same weight (the official layer needs it flipped);
- ``mask=`` works and returns ``(output, output_mask)``;
- taps in the zero padding are not counted by the normalisation.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from . import _common as C
from . import functional as PF
from . import reference


class _PacBase(nn.Module):
    def __init__(self, kernel_size, stride, padding, dilation, kernel_type, smooth_kernel_type,
                 normalize_kernel, normalize_mask, channel_wise):
        super().__init__()
        self.kernel_size = C.pair(kernel_size, "kernel_size")
        self.stride = C.pair(stride, "stride")
        self.padding = C.pair(padding, "padding")
        self.dilation = C.pair(dilation, "dilation")
        self.kernel_type = kernel_type
        self.smooth_kernel_type = smooth_kernel_type
        self.normalize_kernel = bool(normalize_kernel)
        self.normalize_mask = normalize_mask
        self.channel_wise = bool(channel_wise)
        kt = C.parse_kernel_type(kernel_type)
        if kt.is_inverse:
            alpha = torch.tensor([kt.alpha])
            lam = torch.tensor([kt.lam])
            if kt.learnable:
                self.inv_alpha = nn.Parameter(alpha)
                self.inv_lambda = nn.Parameter(lam)
            else:
                self.register_buffer("inv_alpha", alpha)
                self.register_buffer("inv_lambda", lam)
        else:
            self.inv_alpha = self.inv_lambda = None
        kind, k = C.parse_smooth_kernel_type(smooth_kernel_type)
        if kind == "none":
            self.smooth_weight = None
        elif kind == "full":
            self.smooth_weight = nn.Parameter(C.smooth_kernel_init("average", k))
        else:
            self.register_buffer("smooth_weight", C.smooth_kernel_init(kind, k))

    def _kernel_kwargs(self):
        return dict(
            kernel_type=self.kernel_type, smooth_weight=self.smooth_weight,
            normalize_kernel=self.normalize_kernel, normalize_mask=self.normalize_mask,
            inv_alpha=self.inv_alpha, inv_lambda=self.inv_lambda, channel_wise=self.channel_wise,
        )

    def extra_repr(self):
        s = f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"
        if self.dilation != (1, 1):
            s += f", dilation={self.dilation}"
        s += f", kernel_type={self.kernel_type!r}"
        if self.smooth_kernel_type not in (None, "none"):
            s += f", smooth_kernel_type={self.smooth_kernel_type!r}"
        if self.normalize_kernel:
            s += ", normalize_kernel=True"
        if self.channel_wise:
            s += ", channel_wise=True"
        return s


def _fill(weight, bias, filler, shared, transposed, kernel_size, stride, channels_match):
    """Initialises the filter. 'uniform' is PyTorch's default convolution init; 'pool' and
    'linear' put an averaging or a bilinear (tent) filter on the channel diagonal."""
    if filler == "uniform":
        nn.init.kaiming_uniform_(weight, a=math.sqrt(5))
        if bias is not None:
            fan_in = weight[0].numel() if not transposed else weight.shape[1] * weight[0, 0].numel()
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            nn.init.uniform_(bias, -bound, bound)
        return
    if filler not in ("pool", "linear"):
        raise ValueError(f"unknown filler {filler!r}: expected 'uniform', 'pool' or 'linear'")
    if not shared and not channels_match:
        raise ValueError(f"filler {filler!r} needs in_channels == out_channels (or shared_filters)")
    kh, kw = kernel_size
    if filler == "pool":
        k2 = torch.full((kh, kw), 1.0 / (kh * kw))
    else:
        def tent(k, s):
            c = (k - 1) / 2
            return torch.tensor([max(0.0, 1.0 - abs(i - c) / s) for i in range(k)])
        k2 = torch.outer(tent(kh, stride[0]), tent(kw, stride[1]))
        if not transposed:
            k2 = k2 / k2.sum()
    with torch.no_grad():
        weight.zero_()
        if shared:
            weight[0, 0] = k2
        else:
            for i in range(weight.shape[0]):
                weight[i, i] = k2
        if bias is not None:
            bias.zero_()


class PacConv2d(_PacBase):
    """Pixel-adaptive convolution layer.

    Args:
        in_channels, out_channels, kernel_size, stride, padding, dilation, bias: as
            ``nn.Conv2d`` (odd kernel sizes only).
        kernel_type: ``'gaussian'`` or ``'inv_{alpha}_{lambda}[_asym][_fixed]'``.
        smooth_kernel_type: ``'none'``, ``'average_{k}'``, ``'gaussian_{k}'`` or
            ``'full_{k}'`` (learnable) smoothing of the centre feature.
        normalize_kernel: divide by the window's sum of K; ``normalize_mask``: include the
            mask in that sum (default: same as ``normalize_kernel``).
        shared_filters: one (k, k) filter for every channel (needs in == out).
        filler: weight init, ``'uniform'`` (default), ``'pool'`` or ``'linear'``.

    Shapes: ``forward(input (B, Cin, H, W), guide (B, Cf, H, W), kernel=None, mask=None)``
    returns (B, Cout, H_out, W_out), or ``(output, output_mask)`` with ``mask``.

    Example:
        >>> layer = PacConv2d(8, 16, 5, padding=2)
        >>> layer(torch.randn(1, 8, 32, 32), torch.randn(1, 3, 32, 32)).shape
        torch.Size([1, 16, 32, 32])
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 bias=True, kernel_type="gaussian", smooth_kernel_type="none", normalize_kernel=False,
                 shared_filters=False, filler="uniform", normalize_mask=None):
        super().__init__(kernel_size, stride, padding, dilation, kernel_type, smooth_kernel_type,
                         normalize_kernel, normalize_mask, channel_wise=False)
        if shared_filters and in_channels != out_channels:
            raise ValueError(f"shared_filters needs in_channels == out_channels, got {in_channels} and {out_channels}")
        C.check_conv_args(self.kernel_size, self.stride, self.padding, self.dilation)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.shared_filters = bool(shared_filters)
        shape = (1, 1) if shared_filters else (out_channels, in_channels)
        self.weight = nn.Parameter(torch.empty(*shape, *self.kernel_size))
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        self.filler = filler
        _fill(self.weight, self.bias, filler, self.shared_filters, False, self.kernel_size, self.stride,
              in_channels == out_channels)

    def forward(self, input, guide=None, kernel=None, mask=None):
        if input.shape[1] != self.in_channels:
            raise ValueError(f"{type(self).__name__} expects {self.in_channels} input channels, got {input.shape[1]}")
        return PF.pac_conv2d(input, guide, self.weight, self.bias, self.stride, self.padding, self.dilation,
                             mask=mask, kernel=kernel, **self._kernel_kwargs())

    def compute_kernel(self, guide):
        """The adapting kernel (B, 1, kh, kw, H_out, W_out) to pass as ``kernel=``."""
        return reference.pac_kernel2d(
            guide, self.kernel_size, self.stride, self.padding, self.dilation, kernel_type=self.kernel_type,
            smooth_weight=self.smooth_weight, inv_alpha=self.inv_alpha, inv_lambda=self.inv_lambda,
        )

    def extra_repr(self):
        return f"{self.in_channels}, {self.out_channels}, " + super().extra_repr()


class PacConvTranspose2d(_PacBase):
    """Transposed (upsampling) pixel-adaptive convolution layer; the guide is at the output
    resolution. Arguments as :class:`PacConv2d` plus ``output_padding``; weight layout
    (in, out, kh, kw) like ``nn.ConvTranspose2d``; ``filler='linear'`` starts as bilinear
    upsampling.

    Example:
        >>> up = PacConvTranspose2d(8, 8, 5, stride=2, padding=2, output_padding=1)
        >>> up(torch.randn(1, 8, 16, 16), torch.randn(1, 3, 32, 32)).shape
        torch.Size([1, 8, 32, 32])
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=0,
                 dilation=1, bias=True, kernel_type="gaussian", smooth_kernel_type="none",
                 normalize_kernel=False, shared_filters=False, filler="uniform", normalize_mask=None):
        super().__init__(kernel_size, stride, padding, dilation, kernel_type, smooth_kernel_type,
                         normalize_kernel, normalize_mask, channel_wise=False)
        if shared_filters and in_channels != out_channels:
            raise ValueError(f"shared_filters needs in_channels == out_channels, got {in_channels} and {out_channels}")
        self.output_padding = C.pair(output_padding, "output_padding")
        C.check_conv_args(self.kernel_size, self.stride, self.padding, self.dilation, self.output_padding)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.shared_filters = bool(shared_filters)
        shape = (1, 1) if shared_filters else (in_channels, out_channels)
        self.weight = nn.Parameter(torch.empty(*shape, *self.kernel_size))
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        self.filler = filler
        _fill(self.weight, self.bias, filler, self.shared_filters, True, self.kernel_size, self.stride,
              in_channels == out_channels)

    def forward(self, input, guide=None, kernel=None, mask=None):
        if input.shape[1] != self.in_channels:
            raise ValueError(f"{type(self).__name__} expects {self.in_channels} input channels, got {input.shape[1]}")
        return PF.pac_conv_transpose2d(
            input, guide, self.weight, self.bias, self.stride, self.padding, self.output_padding,
            self.dilation, mask=mask, kernel=kernel, **self._kernel_kwargs(),
        )

    def output_size(self, size):
        """Output (H, W) for an input of spatial size ``size``: the guide must have it."""
        return C.conv_transpose_out_size(tuple(size), self.kernel_size, self.stride, self.padding,
                                         self.output_padding, self.dilation)

    def extra_repr(self):
        s = f"{self.in_channels}, {self.out_channels}, " + super().extra_repr()
        if self.output_padding != (0, 0):
            s += f", output_padding={self.output_padding}"
        return s


class PacPool2d(_PacBase):
    """Pixel-adaptive pooling: W = 1, one output channel per input channel, normalised by
    default (with K = 1 it is ``avg_pool2d(count_include_pad=False)``; with a gaussian K on
    colour and position features it is a bilateral filter).

    Example:
        >>> pool = PacPool2d(5, padding=2)
        >>> pool(torch.randn(1, 3, 32, 32), torch.randn(1, 3, 32, 32)).shape
        torch.Size([1, 3, 32, 32])
    """

    def __init__(self, kernel_size, stride=1, padding=0, dilation=1, kernel_type="gaussian",
                 smooth_kernel_type="none", channel_wise=False, normalize_kernel=True, normalize_mask=None):
        super().__init__(kernel_size, stride, padding, dilation, kernel_type, smooth_kernel_type,
                         normalize_kernel, normalize_mask, channel_wise)
        C.check_conv_args(self.kernel_size, self.stride, self.padding, self.dilation)

    def forward(self, input, guide=None, kernel=None, mask=None):
        return PF.pac_conv2d(input, guide, None, None, self.stride, self.padding, self.dilation,
                             mask=mask, kernel=kernel, kernel_size=self.kernel_size, **self._kernel_kwargs())

    def compute_kernel(self, guide):
        """The adapting kernel (B, 1|C, kh, kw, H_out, W_out) to pass as ``kernel=``."""
        return reference.pac_kernel2d(
            guide, self.kernel_size, self.stride, self.padding, self.dilation, kernel_type=self.kernel_type,
            smooth_weight=self.smooth_weight, inv_alpha=self.inv_alpha, inv_lambda=self.inv_lambda,
            channel_wise=self.channel_wise,
        )
