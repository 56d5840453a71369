"""Reference pixel-adaptive convolutions, written for clarity: the ground truth of the tests.

Every window is materialised with ``F.unfold`` (buffers of C*kh*kw*H*W elements), and the
transposed layer is computed literally as the paper describes it: zeros are inserted between
the low-resolution samples, and an ordinary PAC runs at the output resolution where the guide
lives. Use :mod:`pacup.ops.functional` for real work; it computes the same numbers without
those buffers.

Definition (both layers)::

    out_p = (1 / Z_p) * sum_{q in window(p)} M_q * W[q - p] * K(f~_p, f_q) * x_q + b

- taps outside the input (padding) and, for the transposed layer, inserted zeros are not
  samples: they add nothing to the sum and are excluded from ``Z``;
- ``Z_p = sum_q [M_q if normalize_mask] * [K if normalize_kernel] * [q is a sample]`` when
  either normalisation is on, else 1; where ``Z_p = 0`` the output is 0 (before the bias);
- with ``mask`` given, the output mask is 1 where at least one valid sample is in the window.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from . import _common as C


def _ref_core(
    cols, fcols, centre, kernel_cols, mask_cols, sample_cols, weight, shared, bias,
    kt, inv_alpha, inv_lambda, channel_wise, normalize_kernel, normalize_mask, out_hw,
):
    """All arguments are unfolded: ``cols`` (B, C, T, L), ``fcols`` (B, Cf, T, L), ``centre``
    (B, Cf, 1, L), ``*_cols`` (B, 1, T, L) and ``kernel_cols`` (B, 1|C, T, L).
    ``weight`` is (Cout, Cin, T), (T,) for shared filters, or None for pooling."""
    b, cin, t, l = cols.shape
    if kernel_cols is None:
        kernel_cols = C.adapting_kernel(centre, fcols, kt, inv_alpha, inv_lambda, channel_wise)
    weighted = kernel_cols if mask_cols is None else kernel_cols * mask_cols
    x = cols * weighted
    if weight is None:
        num = x.sum(dim=2)
    elif shared:
        num = torch.einsum("t,bctl->bcl", weight, x)
    else:
        num = torch.einsum("oct,bctl->bol", weight, x)
    out_mask = None
    if mask_cols is not None:
        out_mask = (mask_cols * sample_cols).sum(dim=2) > 0
    if normalize_kernel or normalize_mask:
        z = sample_cols
        if normalize_mask and mask_cols is not None:
            z = z * mask_cols
        if normalize_kernel:
            z = z * kernel_cols
        z = z.sum(dim=2)
        num = torch.where(z > 0, num / torch.where(z > 0, z, torch.ones_like(z)), torch.zeros_like(num))
    out = num.reshape(b, -1, *out_hw)
    if bias is not None:
        out = out + bias.reshape(1, -1, 1, 1)
    if out_mask is not None:
        return out, out_mask.reshape(b, 1, *out_hw).to(out.dtype)
    return out


def _parse(kernel_type, normalize_kernel, normalize_mask):
    kt = C.parse_kernel_type(kernel_type)
    if normalize_mask is None:
        normalize_mask = normalize_kernel
    return kt, normalize_mask


def pac_conv2d(
    input, guide, weight=None, bias=None, stride=1, padding=0, dilation=1, *,
    kernel_type="gaussian", smooth_weight=None, normalize_kernel=False, normalize_mask=None,
    mask=None, kernel=None, inv_alpha=None, inv_lambda=None, channel_wise=False, kernel_size=None,
):
    """Reference PAC (and, with ``weight=None``, PAC pooling); see the module docstring."""
    C.check_4d(input, "input")
    kt, normalize_mask = _parse(kernel_type, normalize_kernel, normalize_mask)
    k = C.pair(kernel_size if weight is None else weight.shape[-2:], "kernel_size")
    s, p, d = C.pair(stride, "stride"), C.pair(padding, "padding"), C.pair(dilation, "dilation")
    C.check_conv_args(k, s, p, d)
    shared = weight is not None and C.check_weight(weight, input, transposed=False)
    b, cin, h, w = input.shape
    out_hw = C.conv_out_size((h, w), k, s, p, d)
    t = k[0] * k[1]

    def unfold(z):
        return F.unfold(z, k, dilation=d, padding=p, stride=s).reshape(z.shape[0], z.shape[1], t, -1)

    cols = unfold(input)
    ones = torch.ones(1, 1, h, w, dtype=input.dtype, device=input.device)
    sample_cols = unfold(ones)
    mask_cols = None
    if mask is not None:
        C.check_mask(mask, input)
        mask_cols = unfold(mask.to(input.dtype))
    fcols = centre = kernel_cols = None
    if kernel is not None:
        C.check_kernel(kernel, input, k, out_hw)
        kernel_cols = kernel.reshape(b, kernel.shape[1], t, -1)
    else:
        C.check_guide(guide, input, (h, w), channel_wise, "input")
        fcols = unfold(guide)
        centre_idx = (k[0] // 2) * k[1] + k[1] // 2
        centre = unfold(C.smooth_centre(guide, smooth_weight))[:, :, centre_idx : centre_idx + 1]
    if weight is None:
        w2 = None
    elif shared:
        w2 = weight.reshape(t)
    else:
        w2 = weight.reshape(weight.shape[0], cin, t)
    return _ref_core(
        cols, fcols, centre, kernel_cols, mask_cols, sample_cols, w2, shared, bias,
        kt, inv_alpha, inv_lambda, channel_wise, normalize_kernel, normalize_mask, out_hw,
    )


def pac_pool2d(input, guide, kernel_size, stride=1, padding=0, dilation=1, *, normalize_kernel=True, **kw):
    """Reference PAC pooling: W = 1 and out channels = in channels."""
    return pac_conv2d(
        input, guide, None, None, stride, padding, dilation,
        kernel_size=kernel_size, normalize_kernel=normalize_kernel, **kw,
    )


def pac_conv_transpose2d(
    input, guide, weight, bias=None, stride=1, padding=0, output_padding=0, dilation=1, *,
    kernel_type="gaussian", smooth_weight=None, normalize_kernel=False, normalize_mask=None,
    mask=None, kernel=None, inv_alpha=None, inv_lambda=None, channel_wise=False,
):
    """Reference transposed PAC by zero insertion. ``weight`` has PyTorch's transposed layout
    (in, out, kh, kw); with K = 1 this equals ``F.conv_transpose2d`` with the same weight."""
    C.check_4d(input, "input")
    kt, normalize_mask = _parse(kernel_type, normalize_kernel, normalize_mask)
    k = C.pair(weight.shape[-2:], "kernel_size")
    s, p, d = C.pair(stride, "stride"), C.pair(padding, "padding"), C.pair(dilation, "dilation")
    op = C.pair(output_padding, "output_padding")
    C.check_conv_args(k, s, p, d, op)
    shared = C.check_weight(weight, input, transposed=True)
    b, cin, h, w = input.shape
    out_hw = C.conv_transpose_out_size((h, w), k, s, p, op, d)
    t = k[0] * k[1]

    def upsample(z):
        # Insert s-1 zeros between samples, then pad so that a stride-1 window centred on
        # each output pixel sees exactly the samples that contribute to it.
        up = z.new_zeros(z.shape[0], z.shape[1], (h - 1) * s[0] + 1, (w - 1) * s[1] + 1)
        up[:, :, :: s[0], :: s[1]] = z
        lo = [d[i] * (k[i] - 1) - p[i] for i in range(2)]
        return F.pad(up, (lo[1], lo[1] + op[1], lo[0], lo[0] + op[0]))

    def unfold(z):
        return F.unfold(z, k, dilation=d).reshape(z.shape[0], z.shape[1], t, -1)

    cols = unfold(upsample(input))
    ones = torch.ones(1, 1, h, w, dtype=input.dtype, device=input.device)
    sample_cols = unfold(upsample(ones))
    mask_cols = None
    if mask is not None:
        C.check_mask(mask, input)
        mask_cols = unfold(upsample(mask.to(input.dtype)))
    fcols = centre = kernel_cols = None
    if kernel is not None:
        C.check_kernel(kernel, input, k, out_hw)
        # The window tap t' of the equivalent convolution uses weight tap k-1-t'.
        kernel_cols = kernel.flip(2, 3).reshape(b, kernel.shape[1], t, -1)
    else:
        C.check_guide(guide, input, out_hw, channel_wise, "output")
        cd = [d[i] * (k[i] // 2) for i in range(2)]
        fcols = unfold(F.pad(guide, (cd[1], cd[1], cd[0], cd[0])))
        centre = C.smooth_centre(guide, smooth_weight).reshape(b, guide.shape[1], 1, -1)
    flipped = weight.flip(2, 3)
    if shared:
        w2 = flipped.reshape(t)
    else:
        w2 = flipped.transpose(0, 1).reshape(weight.shape[1], cin, t)
    return _ref_core(
        cols, fcols, centre, kernel_cols, mask_cols, sample_cols, w2, shared, bias,
        kt, inv_alpha, inv_lambda, channel_wise, normalize_kernel, normalize_mask, out_hw,
    )


def pac_kernel2d(
    guide, kernel_size, stride=1, padding=0, dilation=1, *, kernel_type="gaussian",
    smooth_weight=None, inv_alpha=None, inv_lambda=None, channel_wise=False,
):
    """The adapting kernel of a PacConv2d as a tensor (B, 1|C, kh, kw, H_out, W_out), for
    passing as ``kernel=`` to several layers that share it."""
    C.check_4d(guide, "guide")
    kt = C.parse_kernel_type(kernel_type)
    k = C.pair(kernel_size, "kernel_size")
    s, p, d = C.pair(stride, "stride"), C.pair(padding, "padding"), C.pair(dilation, "dilation")
    C.check_conv_args(k, s, p, d)
    b, cf, h, w = guide.shape
    out_hw = C.conv_out_size((h, w), k, s, p, d)
    t = k[0] * k[1]
    fcols = F.unfold(guide, k, dilation=d, padding=p, stride=s).reshape(b, cf, t, -1)
    centre_idx = (k[0] // 2) * k[1] + k[1] // 2
    sm = C.smooth_centre(guide, smooth_weight)
    centre = F.unfold(sm, k, dilation=d, padding=p, stride=s).reshape(b, cf, t, -1)[:, :, centre_idx : centre_idx + 1]
    kern = C.adapting_kernel(centre, fcols, kt, inv_alpha, inv_lambda, channel_wise)
    return kern.reshape(b, kern.shape[1], k[0], k[1], *out_hw)
