"""Pixel-adaptive convolutions: the fast path that the rest of pacup uses.

Same definition and numbers as :mod:`pacup.ops.reference` (read its docstring), computed
without any C*kh*kw*H*W buffer:

- the sum over the window is accumulated one tap (kernel offset) at a time: the input and
  guide are shifted slices (views), the adapting kernel K is one (B, 1, H, W) map, and the
  tap's filter is a 1x1 matrix product;
- three schedules of that sum (see :func:`_accumulate`): eager inference gathers the taps of
  a cache-sized band of rows and multiplies them with all filters at once; eager training
  uses the same forward and recomputes one band at a time in the backward pass (in closed
  form, two matrix products per band, for dense filters and the gaussian K); traced code
  (torch.compile, torch.export) loops over the taps of the whole grid, checkpointing each
  tap when gradients are needed;
- the transposed layer is split into its stride*stride output phases (sub-pixel
  decomposition): each phase is a small stride-1 PAC on the low-resolution samples, so no
  inserted zero is ever multiplied; the phases are interleaved with ``pixel_shuffle``.

Only slicing, elementwise maths, matrix products and ``pixel_shuffle`` are used, with a
fixed number of taps, so the functions trace under ``torch.compile`` and ``torch.export``
with dynamic height and width.

Weight layouts follow PyTorch: ``pac_conv2d`` takes (out, in, kh, kw) like ``nn.Conv2d``,
``pac_conv_transpose2d`` takes (in, out, kh, kw) like ``nn.ConvTranspose2d``; with K = 1 and
no normalisation they equal those layers for the same weight tensor. (The official PAC code
does not flip the kernel in its transposed layer, so its weights equal ours flipped in both
spatial dimensions.)
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from . import _common as C
from . import gpu

__all__ = ["pac_conv2d", "pac_conv_transpose2d", "pac_pool2d"]


def _tap(xs, fs, ms, vs, centre, k_pre, w, inv_alpha, inv_lambda, *, kt, channel_wise, shared, z_use_k):
    """One kernel offset: returns its contribution to the numerator and to Z (or None)."""
    k = k_pre if k_pre is not None else C.adapting_kernel(centre, fs, kt, inv_alpha, inv_lambda, channel_wise)
    x = xs * (k if ms is None else k * ms)
    if w is None:
        contrib = x
    elif shared:
        contrib = x * w
    else:
        # A 1x1 convolution: (Cout, Cin) applied at every pixel.
        contrib = F.conv2d(x, w[:, :, None, None])
    z = None
    if vs is not None:
        z = k * vs if z_use_k else vs
    return contrib, z


# Eager inference works on bands of output rows whose im2col buffer holds at most this many
# elements and at most _BAND_ROWS rows (it stays in the CPU's last-level cache while it is
# written and multiplied; fewer, larger bands mean fewer small operations). Measured on a
# 2-core CPU at 480x640, 32 channels: 8-16-row bands beat 2-row bands by about 1.4x.
_BAND_ELEMENTS = 1 << 22
_BAND_ROWS = 16


def _accumulate(xp, fp, mp, vp, centre, taps, stride, out_hw, kernel_taps, opts, inv_alpha, inv_lambda):
    """Sums the taps of one output grid.

    ``xp``, ``fp``, ``mp``, ``vp``: padded input, tap features, mask (or None) and the
    Z-validity map (or None), all on the same lattice. ``taps``: list of (dy, dx, w) where
    (dy, dx) is the tap's top-left offset in that padded lattice and ``w`` its filter (None,
    a scalar tensor for shared filters, or (Cout, Cin)). ``kernel_taps``: per tap a
    precomputed K (B, 1|C, Ho, Wo) or None. Returns (numerator, Z or None, mask count or None).

    Three schedules of the same sum:

    - traced (torch.compile / torch.export): tap by tap over the whole grid, each tap
      checkpointed when gradients are needed;
    - eager inference: band by band of output rows (:func:`_accumulate_bands`);
    - eager training: the banded forward, and a backward that recomputes one band at a time
      (:class:`_BandedPac`: closed form for dense gaussian layers, autograd otherwise), so
      saved state stays band-sized.
    """
    need_grad = torch.is_grad_enabled() and any(
        t is not None and t.requires_grad
        for t in (xp, fp, centre, inv_alpha, inv_lambda, *(w for _, _, w in taps), *kernel_taps)
    )
    if torch.compiler.is_compiling() or torch.jit.is_tracing():
        return _accumulate_grid(xp, fp, mp, vp, centre, taps, stride, out_hw, kernel_taps, opts, inv_alpha, inv_lambda, need_grad)
    if need_grad:
        return _BandedPac.run(xp, fp, mp, vp, centre, taps, stride, out_hw, kernel_taps, opts, inv_alpha, inv_lambda)
    with torch.no_grad():
        return _accumulate_bands(xp, fp, mp, vp, centre, taps, stride, out_hw, kernel_taps, opts, inv_alpha, inv_lambda)


# Output rows per band when the backward pass recomputes a band under autograd: about this
# many elements of one (C, rows, W) tensor, so that the band's recorded graph stays small.
_GRAD_BAND_ELEMENTS = 1 << 18


class _BandedPac(torch.autograd.Function):
    """Autograd for the eager schedule. The forward saves only its (padded) inputs. The
    backward works on one band of output rows at a time and adds that band's gradients into
    full-size buffers: in closed form for dense filters and the gaussian kernel (what the
    networks train, :meth:`_dense_backward`), otherwise by re-running the band's taps under
    autograd."""

    @staticmethod
    def run(xp, fp, mp, vp, centre, taps, stride, out_hw, kernel_taps, opts, inv_alpha, inv_lambda):
        ws = [w for _, _, w in taps]
        n_taps = len(taps)
        kt_given = [k is not None for k in kernel_taps]
        meta = dict(offsets=[(dy, dx) for dy, dx, _ in taps], stride=stride, out_hw=out_hw, opts=opts,
                    n_taps=n_taps, kt_given=kt_given, w_given=[w is not None for w in ws],
                    has=[t is not None for t in (xp, fp, mp, vp, centre, inv_alpha, inv_lambda)])
        tensors = [t for t in (xp, fp, mp, vp, centre, inv_alpha, inv_lambda) if t is not None]
        tensors += [w for w in ws if w is not None] + [k for k in kernel_taps if k is not None]
        num, z, count = _BandedPac.apply(meta, *tensors)
        return num, (z if vp is not None else None), (count if mp is not None else None)

    @staticmethod
    def _unpack(meta, tensors):
        it = iter(tensors)
        xp, fp, mp, vp, centre, inv_alpha, inv_lambda = (next(it) if h else None for h in meta["has"])
        ws = [next(it) if g else None for g in meta["w_given"]]
        kernel_taps = [next(it) if g else None for g in meta["kt_given"]]
        taps = [(dy, dx, w) for (dy, dx), w in zip(meta["offsets"], ws)]
        return xp, fp, mp, vp, centre, inv_alpha, inv_lambda, taps, kernel_taps

    @staticmethod
    def forward(ctx, meta, *tensors):
        xp, fp, mp, vp, centre, inv_alpha, inv_lambda, taps, kernel_taps = _BandedPac._unpack(meta, tensors)
        num, z, count = _accumulate_bands(xp, fp, mp, vp, centre, taps, meta["stride"], meta["out_hw"], kernel_taps,
                                          meta["opts"], inv_alpha, inv_lambda)
        ctx.meta = meta
        ctx.save_for_backward(*tensors)
        empty = num.new_empty(0)
        z = empty if z is None else z
        count = empty if count is None else count
        ctx.mark_non_differentiable(count)
        return num, z, count

    @staticmethod
    def backward(ctx, g_num, g_z, _g_count):
        meta, tensors = ctx.meta, ctx.saved_tensors
        xp, fp, mp, vp, centre, inv_alpha, inv_lambda, taps, kernel_taps = _BandedPac._unpack(meta, tensors)
        (ho, wo), (sy, sx) = meta["out_hw"], meta["stride"]
        names = _BandedPac._names(meta)
        wanted = {n for n, need in zip(names, ctx.needs_input_grad[1:]) if need}
        if _BandedPac._dense_ok(meta, tensors, names, wanted):
            got = _BandedPac._dense_backward(meta, xp, fp, mp, vp, centre, taps, kernel_taps, g_num, g_z, wanted)
            return (None, *(got.get(n) for n in names))
        grads = [torch.zeros_like(t) if n in wanted else None for n, t in zip(names, tensors)]
        g_of = dict(zip(names, grads))
        tap_fn = functools.partial(_tap, **meta["opts"])
        width = max(xp.shape[1], g_num.shape[1])
        band = max(1, _GRAD_BAND_ELEMENTS // max(1, xp.shape[0] * wo * width))
        for y0 in range(0, ho, band):
            y1 = min(ho, y0 + band)
            rows = y1 - y0
            # Every tap reads its own strided window of the lattice tensors; each window is
            # a leaf of its own, so its gradient is added straight into the window of the
            # full-size buffer (autograd through the slices would zero-fill and copy a
            # band-sized tensor per tap and then sum them).
            leaves, where = [], []

            def leaf(t, key, window):
                if t is None:
                    return None
                part = t[window].detach()
                if g_of.get(key) is None:
                    return part
                part.requires_grad_(True)
                leaves.append(part)
                where.append((g_of[key], window))
                return part

            out_rows = (Ellipsis, slice(y0, y1), slice(None))
            bc = leaf(centre, "centre", out_rows)
            ba = leaf(inv_alpha, "inv_alpha", (Ellipsis,))
            bl = leaf(inv_lambda, "inv_lambda", (Ellipsis,))
            with torch.enable_grad():
                num = z = None
                for j, ((dy, dx, w), k_pre) in enumerate(zip(taps, kernel_taps)):
                    win = (slice(None), slice(None), slice(y0 * sy + dy, y0 * sy + dy + (rows - 1) * sy + 1, sy),
                           slice(dx, dx + (wo - 1) * sx + 1, sx))
                    bw = leaf(w, f"w{j}", (Ellipsis,))
                    bk = leaf(k_pre, f"k{j}", out_rows)
                    c, zc = tap_fn(leaf(xp, "xp", win), leaf(fp, "fp", win), leaf(mp, "mp", win), leaf(vp, "vp", win),
                                   bc, bk, bw, ba, bl)
                    num = c if num is None else num + c
                    if zc is not None and zc.requires_grad:
                        z = zc if z is None else z + zc
                outs, gouts = [num], [g_num[:, :, y0:y1]]
                if z is not None and g_z.numel():
                    outs.append(z)
                    gouts.append(g_z[:, :, y0:y1])
                got = torch.autograd.grad(outs, leaves, gouts, allow_unused=True) if leaves else ()
            for (g, window), gb in zip(where, got):
                if gb is not None:
                    g[window] += gb
        return (None, *grads)

    @staticmethod
    def _dense_ok(meta, tensors, names, wanted):
        """The closed-form backward covers what the networks train: dense filters, the
        gaussian kernel (or precomputed K), and no gradient for the mask or Z-validity."""
        return (all(meta["w_given"]) and meta["opts"]["kt"].name == "gaussian" and not {"mp", "vp"} & wanted
                and len({t.dtype for t in tensors if t.is_floating_point()}) == 1
                and all(t.dim() == 2 for n, t in zip(names, tensors) if n.startswith("w")))

    @staticmethod
    def _names(meta):
        """The saved tensors' names in _unpack's order: lattice, centre, alpha, lambda, then
        each tap's filter "w<j>" and precomputed kernel "k<j>"."""
        names = [n for n, h in zip(("xp", "fp", "mp", "vp", "centre", "inv_alpha", "inv_lambda"), meta["has"]) if h]
        names += [f"w{j}" for j, g in enumerate(meta["w_given"]) if g]
        return names + [f"k{j}" for j, g in enumerate(meta["kt_given"]) if g]

    @staticmethod
    def _dense_backward(meta, xp, fp, mp, vp, centre, taps, kernel_taps, g_num, g_z, wanted):
        """Closed-form gradients of the banded forward for dense filters, band by band; returns
        {saved tensor name: gradient} for the names in ``wanted`` (None: zero).

        With cols[p, (t, c)] = x_t[p, c] * K_t[p] * m_t[p] (the forward's im2col buffer) and
        out = cols @ W^T: dW = g^T @ cols and dcols = g @ W are one matrix product each per
        band (instead of a small product and its backward per tap); then dx_t = dcols_t *
        K_t * m_t, dK_t = <dcols_t, x_t> * m_t (+ g_Z * v_t when Z sums K), and for the
        gaussian K_t = exp(-|d_t|^2 / 2) with d_t = f_t - f_centre: df_t = -dK_t * K_t * d_t
        and df_centre = -sum_t df_t (per channel when channel-wise). Bands are sized like the
        forward's (:data:`_BAND_ELEMENTS`): the band's tensors are plain buffers, no graph.
        """
        (ho, wo), (sy, sx) = meta["out_hw"], meta["stride"]
        opts = meta["opts"]
        channel_wise, z_use_k = opts["channel_wise"], opts["z_use_k"]
        b, cin = xp.shape[0], xp.shape[1]
        n_taps = len(taps)
        cout = taps[0][2].shape[0]
        to_cl = lambda t: None if t is None else t.permute(0, 2, 3, 1)  # noqa: E731
        xl, ml, vl = to_cl(xp).contiguous(), to_cl(mp), to_cl(vp)
        # Gradient buffers only for what is wanted: dx accumulates channels-last like xl.
        g_xl = xl.new_zeros(xl.shape) if "xp" in wanted else None
        g_f = torch.zeros_like(fp) if "fp" in wanted else None
        g_c = torch.zeros_like(centre) if "centre" in wanted else None
        g_kts = [torch.zeros_like(k) if f"k{j}" in wanted else None for j, k in enumerate(kernel_taps)]
        need_k = g_f is not None or g_c is not None or any(g is not None for g in g_kts)
        w_all = torch.stack([w for _, _, w in taps], 1).reshape(cout, n_taps * cin)
        want_w = any(f"w{j}" in wanted for j in range(n_taps))
        g_w_all = torch.zeros_like(w_all) if want_w else None
        g_zl = to_cl(g_z) if (g_z is not None and g_z.numel() and vl is not None and z_use_k) else None
        band = max(1, min(ho, _BAND_ROWS, _BAND_ELEMENTS // max(1, b * wo * n_taps * cin)))
        cols = xl.new_empty(b, band, wo, n_taps, cin)
        for y0 in range(0, ho, band):
            y1 = min(ho, y0 + band)
            bh = y1 - y0
            # Each tap's window of the lattice (rows, cols) for this band.
            wins = [(slice(y0 * sy + dy, (y1 - 1) * sy + dy + 1, sy), slice(dx, dx + (wo - 1) * sx + 1, sx))
                    for dy, dx, _ in taps]
            kms, ks, diffs = [], [], []
            for t, (r, c) in enumerate(wins):
                if kernel_taps[t] is not None:
                    k, d = kernel_taps[t][:, :, y0:y1], None
                else:
                    d = fp[:, :, r, c] - centre[:, :, y0:y1]
                    d2 = d * d
                    k = torch.exp(-0.5 * (d2 if channel_wise else d2.sum(1, keepdim=True)))
                kl = to_cl(k)
                km = kl if ml is None else kl * ml[:, r, c]
                torch.mul(xl[:, r, c], km, out=cols[:, :bh, :, t])
                kms.append(km)
                ks.append(k)
                diffs.append(d)
            flat = cols[:, :bh].reshape(-1, n_taps * cin)
            g_out = to_cl(g_num[:, :, y0:y1]).reshape(-1, cout)
            if g_w_all is not None:
                g_w_all.addmm_(g_out.t(), flat)
            g_cols = (g_out @ w_all).reshape(b, bh, wo, n_taps, cin)
            for t, (r, c) in enumerate(wins):
                gc = g_cols[:, :, :, t]
                if g_xl is not None:
                    g_xl[:, r, c].addcmul_(gc, kms[t])
                if not need_k:
                    continue
                g_km = gc * xl[:, r, c]
                if not channel_wise:
                    g_km = g_km.sum(-1, keepdim=True)
                g_k = g_km if ml is None else g_km * ml[:, r, c]
                if g_zl is not None:
                    g_k = g_k + g_zl[:, y0:y1] * vl[:, r, c]
                g_k = g_k.permute(0, 3, 1, 2)
                if kernel_taps[t] is not None:
                    if g_kts[t] is not None:
                        g_kts[t][:, :, y0:y1] += g_k
                    continue
                g_d = (g_k * ks[t]).neg_() * diffs[t]
                if g_f is not None:
                    g_f[:, :, r, c] += g_d
                if g_c is not None:
                    g_c[:, :, y0:y1] -= g_d
        got = {"xp": None if g_xl is None else g_xl.permute(0, 3, 1, 2), "fp": g_f, "centre": g_c}
        got.update((f"k{j}", g) for j, g in enumerate(g_kts))
        if g_w_all is not None:
            g_w = g_w_all.reshape(cout, n_taps, cin)
            got.update((f"w{j}", g_w[:, j]) for j in range(n_taps))
        return {n: g for n, g in got.items() if n in wanted}


def _accumulate_bands(xp, fp, mp, vp, centre, taps, stride, out_hw, kernel_taps, opts, inv_alpha, inv_lambda):
    """Eager inference: channels-last, band by band of output rows. Each band gathers its
    M*K*x taps into one (rows*W, taps*Cin) buffer and multiplies it with all filters in one
    1x1 convolution (oneDNN runs that at several times the speed of kh*kw small products).
    Results are channels-last tensors viewed as NCHW."""
    ho, wo = out_hw
    sy, sx = stride
    b = xp.shape[0]
    to_cl = lambda t: None if t is None else t.permute(0, 2, 3, 1)  # noqa: E731
    xl = to_cl(xp).contiguous()
    # K is computed in NCHW (the channel reduction is fastest there); a (B, 1, H, W) result
    # is also a valid channels-last (B, H, W, 1) view.
    ml, vl = to_cl(mp), to_cl(vp)
    kls = [to_cl(k) for k in kernel_taps]
    kt, channel_wise, z_use_k = opts["kt"], opts["channel_wise"], opts["z_use_k"]
    n_taps, cin = len(taps), xl.shape[-1]
    dense = taps[0][2] is not None and taps[0][2].dim() == 2
    if dense:
        cout = taps[0][2].shape[0]
        # (Cout, taps*Cin, 1, 1) in the buffer's (tap, channel) order.
        wconv = torch.stack([w for _, _, w in taps], 1).reshape(cout, n_taps * cin, 1, 1)
    else:
        cout = cin
    out = xl.new_empty(b, ho, wo, cout)
    kc = cin if channel_wise else 1
    z = None if vl is None else xl.new_zeros(b, ho, wo, kc)
    count = None if ml is None else xl.new_zeros(b, ho, wo, 1)
    band = max(1, min(ho, _BAND_ROWS, _BAND_ELEMENTS // max(1, b * wo * n_taps * cin)))
    cols = xl.new_empty(b, band, wo, n_taps, cin) if dense else None
    for y0 in range(0, ho, band):
        y1 = min(ho, y0 + band)
        bh = y1 - y0
        ob = out[:, y0:y1]
        if not dense:
            ob.zero_()
        for t, (dy, dx, w) in enumerate(taps):
            def view(a):
                if a is None:
                    return None
                return a[:, y0 * sy + dy : (y1 - 1) * sy + dy + 1 : sy, dx : dx + (wo - 1) * sx + 1 : sx]

            if kls[t] is not None:
                k = kls[t][:, y0:y1]
            else:
                fs = fp[:, :, y0 * sy + dy : (y1 - 1) * sy + dy + 1 : sy, dx : dx + (wo - 1) * sx + 1 : sx]
                k = to_cl(C.adapting_kernel(centre[:, :, y0:y1], fs, kt, inv_alpha, inv_lambda, channel_wise))
            ms, vs = view(ml), view(vl)
            km = k if ms is None else k * ms
            if dense:
                torch.mul(view(xl), km, out=cols[:, :bh, :, t])
            elif w is None:
                ob.addcmul_(view(xl), km)
            else:
                ob.addcmul_(view(xl), km * w)
            if z is not None:
                z[:, y0:y1].add_(k * vs if z_use_k else vs)
            if count is not None:
                count[:, y0:y1].add_(ms)
        if dense:
            buf = cols[:, :bh].reshape(b, bh, wo, n_taps * cin).permute(0, 3, 1, 2)
            ob.copy_(F.conv2d(buf, wconv).permute(0, 2, 3, 1))
    back = lambda t: None if t is None else t.permute(0, 3, 1, 2)  # noqa: E731
    return back(out), back(z), back(count)


def _accumulate_grid(xp, fp, mp, vp, centre, taps, stride, out_hw, kernel_taps, opts, inv_alpha, inv_lambda, need_grad):
    ho, wo = out_hw
    if need_grad and xp.device.type == "cpu":
        # oneDNN runs the per-tap 1x1 products and their gradients 2-3x faster channels-last.
        xp = xp.contiguous(memory_format=torch.channels_last)
    sy, sx = stride
    tap_fn = functools.partial(_tap, **opts)
    num = z = count = None
    for (dy, dx, w), k_pre in zip(taps, kernel_taps):
        def view(t):
            if t is None:
                return None
            return t[:, :, dy : dy + (ho - 1) * sy + 1 : sy, dx : dx + (wo - 1) * sx + 1 : sx]

        args = (view(xp), view(fp), view(mp), view(vp), centre, k_pre, w, inv_alpha, inv_lambda)
        if need_grad:
            c, zc = checkpoint(tap_fn, *args, use_reentrant=False)
        else:
            c, zc = tap_fn(*args)
        num = c if num is None else num + c
        if zc is not None:
            z = zc if z is None else z + zc
        if args[2] is not None:
            count = args[2] if count is None else count + args[2]
    return num, z, count


def _finish(num, z, count, bias, has_mask):
    if z is not None:
        # Z is zero only where no valid sample is in the window; the output is 0 there.
        nz = z > 0
        num = torch.where(nz, num / torch.where(nz, z, torch.ones_like(z)), torch.zeros_like(num))
    if bias is not None:
        num = num + bias.reshape(1, -1, 1, 1)
    if has_mask:
        return num, (count > 0).to(num.dtype)
    return num


def _options(kernel_type, normalize_kernel, normalize_mask, channel_wise, shared, has_mask):
    kt = C.parse_kernel_type(kernel_type)
    if normalize_mask is None:
        normalize_mask = normalize_kernel
    opts = dict(kt=kt, channel_wise=channel_wise, shared=shared, z_use_k=bool(normalize_kernel))
    # Z counts the mask only when asked to; otherwise it counts in-image samples.
    z_uses_mask = bool(normalize_mask) and has_mask
    return opts, bool(normalize_kernel or normalize_mask), z_uses_mask


def pac_conv2d(
    input: torch.Tensor,
    guide: torch.Tensor | None,
    weight: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    stride=1,
    padding=0,
    dilation=1,
    *,
    kernel_type: str = "gaussian",
    smooth_weight: torch.Tensor | None = None,
    normalize_kernel: bool = False,
    normalize_mask: bool | None = None,
    mask: torch.Tensor | None = None,
    kernel: torch.Tensor | None = None,
    inv_alpha: torch.Tensor | None = None,
    inv_lambda: torch.Tensor | None = None,
    channel_wise: bool = False,
    kernel_size=None,
):
    """Pixel-adaptive convolution.

    Args:
        input: (B, Cin, H, W).
        guide: adapting features (B, Cf, H, W) at the input's resolution; may be None when
            ``kernel`` is given.
        weight: (Cout, Cin, kh, kw) like ``nn.Conv2d``; (1, 1, kh, kw) applies one shared
            filter to every channel; None means W = 1 per channel (pooling, then
            ``kernel_size`` is required).
        bias: (Cout,) or None, added after normalisation.
        stride, padding, dilation: as ``nn.Conv2d``; kh and kw must be odd.
        kernel_type: ``'gaussian'`` or ``'inv_{alpha}_{lambda}[_asym][_fixed]'``.
        smooth_weight: optional (k, k) filter that smooths the centre feature f~_p.
        normalize_kernel: divide by the sum of K over the window's samples.
        normalize_mask: include the mask in that sum (default: same as ``normalize_kernel``);
            alone, it divides by the number of valid samples.
        mask: (B, 1, H, W) validity of the input; invalid samples contribute nothing.
        kernel: precomputed K (B, 1|Cin, kh, kw, H_out, W_out) instead of ``guide``.
        inv_alpha, inv_lambda: tensors overriding the inverse kernel's constants.
        channel_wise: one K per channel (guide needs Cin channels).

    Returns:
        (B, Cout, H_out, W_out), or ``(output, output_mask)`` when ``mask`` is given, the
        mask being 1 where at least one valid sample fell in the window.

    Example:
        >>> x, f = torch.randn(1, 8, 32, 32), torch.randn(1, 4, 32, 32)
        >>> pac_conv2d(x, f, torch.randn(16, 8, 5, 5), padding=2).shape
        torch.Size([1, 16, 32, 32])
    """
    C.check_4d(input, "input")
    k = C.pair(kernel_size if weight is None else weight.shape[-2:], "kernel_size")
    s, p, d = C.pair(stride, "stride"), C.pair(padding, "padding"), C.pair(dilation, "dilation")
    C.check_conv_args(k, s, p, d)
    shared = weight is not None and C.check_weight(weight, input, transposed=False)
    b, cin, h, w = input.shape
    out_hw = C.conv_out_size((h, w), k, s, p, d)
    if min(out_hw) < 1:
        raise ValueError(f"input {h}x{w} is too small for kernel {k} with padding {p}, dilation {d}")
    if mask is not None:
        C.check_mask(mask, input)
    if kernel is not None:
        C.check_kernel(kernel, input, k, out_hw)
    else:
        C.check_guide(guide, input, (h, w), channel_wise, "input")
        # Features may arrive in another float dtype (e.g. float32 features scaled by a
        # float32 parameter under fp16 autocast): K is computed in the input's dtype.
        guide = guide.to(input.dtype)
    if input.device.type == "cuda":
        fused = gpu.pac_conv2d(
            input=input, guide=guide, weight=weight, bias=bias, stride=s, padding=p, dilation=d,
            kernel_size=k, kernel_type=kernel_type, smooth_weight=smooth_weight, normalize_kernel=normalize_kernel,
            normalize_mask=normalize_mask, mask=mask, kernel=kernel, inv_alpha=inv_alpha, inv_lambda=inv_lambda,
            channel_wise=channel_wise,
        )
        if fused is not None:
            return fused
    opts, use_z, z_uses_mask = _options(kernel_type, normalize_kernel, normalize_mask, channel_wise, shared, mask is not None)

    pad = (p[1], p[1], p[0], p[0])
    xp = F.pad(input, pad)
    mp = fp = centre = None
    if mask is not None:
        mp = F.pad(mask.to(input.dtype), pad)
    vp = None
    if use_z:
        vp = mp if z_uses_mask else F.pad(torch.ones_like(input[:, :1]), pad)
    if kernel is None:
        fp = F.pad(guide, pad)
        cp = fp if smooth_weight is None else F.pad(C.smooth_centre(guide, smooth_weight), pad)
        cy, cx = d[0] * (k[0] // 2), d[1] * (k[1] // 2)
        centre = cp[:, :, cy : cy + (out_hw[0] - 1) * s[0] + 1 : s[0], cx : cx + (out_hw[1] - 1) * s[1] + 1 : s[1]]

    taps, kernel_taps = [], []
    for i in range(k[0]):
        for j in range(k[1]):
            taps.append((i * d[0], j * d[1], _tap_weight(weight, shared, i, j, transposed=False)))
            kernel_taps.append(None if kernel is None else kernel[:, :, i, j])
    num, z, count = _accumulate(xp, fp, mp, vp, centre, taps, s, out_hw, kernel_taps, opts, inv_alpha, inv_lambda)
    return _finish(num, z, count, bias, mask is not None)


def _tap_weight(weight, shared, i, j, transposed):
    if weight is None:
        return None
    if shared:
        return weight[0, 0, i, j]
    return weight[:, :, i, j].t() if transposed else weight[:, :, i, j]


def pac_pool2d(input, guide, kernel_size, stride=1, padding=0, dilation=1, *, normalize_kernel=True, **kwargs):
    """PAC pooling: ``pac_conv2d`` with W = 1 per channel, normalised by default.

    With K = 1 (e.g. a constant guide) this is ``F.avg_pool2d(..., count_include_pad=False)``.
    """
    return pac_conv2d(
        input, guide, None, None, stride, padding, dilation,
        kernel_size=kernel_size, normalize_kernel=normalize_kernel, **kwargs,
    )


def pac_conv_transpose2d(
    input: torch.Tensor,
    guide: torch.Tensor | None,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride=1,
    padding=0,
    output_padding=0,
    dilation=1,
    *,
    kernel_type: str = "gaussian",
    smooth_weight: torch.Tensor | None = None,
    normalize_kernel: bool = False,
    normalize_mask: bool | None = None,
    mask: torch.Tensor | None = None,
    kernel: torch.Tensor | None = None,
    inv_alpha: torch.Tensor | None = None,
    inv_lambda: torch.Tensor | None = None,
    channel_wise: bool = False,
):
    """Transposed (upsampling) pixel-adaptive convolution.

    The guide lives at the OUTPUT resolution. The low-resolution sample ``q`` sits at output
    position ``q * stride + dilation * (k // 2) - padding`` (for the usual k=5, stride=2,
    padding=2, output_padding=1 that is ``2q``: the top-left pixel of its 2x2 block), and
    ``K`` compares the guide there with the guide at each output pixel. Only taps that hit a
    real sample contribute.

    Args:
        input: (B, Cin, h, w) low-resolution signal.
        guide: (B, Cf, H, W) with (H, W) the output size
            ``(h - 1) * stride - 2 * padding + dilation * (k - 1) + output_padding + 1``.
        weight: (Cin, Cout, kh, kw) like ``nn.ConvTranspose2d`` (or (1, 1, kh, kw) shared).
        mask: (B, 1, h, w) validity of the low-resolution samples.
        kernel: precomputed K (B, 1|Cin, kh, kw, H, W) indexed by weight tap.
        Other arguments: as :func:`pac_conv2d`.

    Returns:
        (B, Cout, H, W), or ``(output, output_mask)`` when ``mask`` is given.

    Example:
        >>> x, f = torch.randn(1, 8, 16, 16), torch.randn(1, 4, 32, 32)
        >>> w = torch.randn(8, 8, 5, 5)
        >>> pac_conv_transpose2d(x, f, w, stride=2, padding=2, output_padding=1).shape
        torch.Size([1, 8, 32, 32])
    """
    C.check_4d(input, "input")
    if not isinstance(weight, torch.Tensor):
        raise ValueError("pac_conv_transpose2d needs a weight tensor (in, out, kh, kw)")
    k = C.pair(weight.shape[-2:], "kernel_size")
    s, p, d = C.pair(stride, "stride"), C.pair(padding, "padding"), C.pair(dilation, "dilation")
    op = C.pair(output_padding, "output_padding")
    C.check_conv_args(k, s, p, d, op)
    shared = C.check_weight(weight, input, transposed=True)
    b, cin, h, w = input.shape
    out_hw = C.conv_transpose_out_size((h, w), k, s, p, op, d)
    if min(out_hw) < 1:
        raise ValueError(f"output size {out_hw} of the transposed convolution is empty")
    if mask is not None:
        C.check_mask(mask, input)
    if kernel is not None:
        C.check_kernel(kernel, input, k, out_hw)
    else:
        C.check_guide(guide, input, out_hw, channel_wise, "output")
        guide = guide.to(input.dtype)
    if input.device.type == "cuda":
        fused = gpu.pac_conv_transpose2d(
            input=input, guide=guide, weight=weight, bias=bias, stride=s, padding=p, output_padding=op,
            dilation=d, kernel_size=k, kernel_type=kernel_type, smooth_weight=smooth_weight,
            normalize_kernel=normalize_kernel, normalize_mask=normalize_mask, mask=mask, kernel=kernel,
            inv_alpha=inv_alpha, inv_lambda=inv_lambda, channel_wise=channel_wise,
        )
        if fused is not None:
            return fused
    opts, use_z, z_uses_mask = _options(kernel_type, normalize_kernel, normalize_mask, channel_wise, shared, mask is not None)

    # Per dimension: for each output phase r, the taps t that reach it and their shift
    # delta = (t*d - p - r) / s, so that phase pixel m gathers the sample q = m - delta.
    lo_res = (h, w)
    phase_taps, phase_len, pad_lo, pad_hi = [], [], [], []
    for dim in range(2):
        per_phase, lens = [], []
        for r in range(s[dim]):
            ts = [(t, (t * d[dim] - p[dim] - r) // s[dim]) for t in range(k[dim]) if (t * d[dim] - p[dim] - r) % s[dim] == 0]
            per_phase.append(ts)
            lens.append((out_hw[dim] - r + s[dim] - 1) // s[dim])
        deltas = [dl for ts in per_phase for _, dl in ts] or [0]
        lo = max(0, max(deltas))
        hi = max(0, max(lens) - 1 - min(deltas) - (lo_res[dim] - 1))
        phase_taps.append(per_phase)
        phase_len.append(lens)
        pad_lo.append(lo)
        pad_hi.append(hi)
    pad = (pad_lo[1], pad_hi[1], pad_lo[0], pad_hi[0])

    xp = F.pad(input, pad)
    mp = None if mask is None else F.pad(mask.to(input.dtype), pad)
    vp = None
    if use_z:
        vp = mp if z_uses_mask else F.pad(torch.ones_like(input[:, :1]), pad)
    fp = smoothed = None
    if kernel is None:
        # Guide features at the sample positions q*s + d*(k//2) - p (zero outside the image).
        loc0 = [d[i] * (k[i] // 2) - p[i] for i in range(2)]
        glo = [max(0, -loc0[i]) for i in range(2)]
        ghi = [max(0, (lo_res[i] - 1) * s[i] + loc0[i] - (out_hw[i] - 1)) for i in range(2)]
        gpad = F.pad(guide, (glo[1], ghi[1], glo[0], ghi[0]))
        a = [loc0[i] + glo[i] for i in range(2)]
        samples = gpad[:, :, a[0] : a[0] + (h - 1) * s[0] + 1 : s[0], a[1] : a[1] + (w - 1) * s[1] + 1 : s[1]]
        fp = F.pad(samples, pad)
        smoothed = C.smooth_centre(guide, smooth_weight)

    cout = cin if shared else weight.shape[1]
    hc, wc = phase_len[0][0], phase_len[1][0]  # phase 0 is the longest
    outs, masks = [], []
    for ry in range(s[0]):
        for rx in range(s[1]):
            ph = (phase_len[0][ry], phase_len[1][rx])
            taps, kernel_taps = [], []
            for ty, dly in phase_taps[0][ry]:
                for tx, dlx in phase_taps[1][rx]:
                    taps.append((pad_lo[0] - dly, pad_lo[1] - dlx, _tap_weight(weight, shared, ty, tx, transposed=True)))
                    kernel_taps.append(None if kernel is None else kernel[:, :, ty, tx, ry :: s[0], rx :: s[1]])
            if not taps or min(ph) < 1:
                # No tap reaches this phase (possible when dilation and stride share a factor).
                o = input.new_zeros(b, cout, max(ph[0], 0), max(ph[1], 0))
                res = _finish(o, None, torch.zeros_like(o[:, :1]), bias, mask is not None)
            else:
                centre = None if smoothed is None else smoothed[:, :, ry :: s[0], rx :: s[1]]
                num, z, count = _accumulate(xp, fp, mp, vp, centre, taps, (1, 1), ph, kernel_taps, opts, inv_alpha, inv_lambda)
                res = _finish(num, z, count, bias, mask is not None)
            o, m = res if mask is not None else (res, None)
            outs.append(F.pad(o, (0, wc - ph[1], 0, hc - ph[0])))
            if m is not None:
                masks.append(F.pad(m, (0, wc - ph[1], 0, hc - ph[0])))

    def interleave(phases, c):
        # (B, c, sy, sx, hc, wc) -> pixel_shuffle wants channel index c*sy*sx + ry*sx + rx.
        if s[0] == s[1]:
            stacked = torch.stack(phases, dim=2).reshape(b, c * s[0] * s[1], hc, wc)
            return F.pixel_shuffle(stacked, s[0])[:, :, : out_hw[0], : out_hw[1]]
        stacked = torch.stack(phases, dim=2).reshape(b, c, s[0], s[1], hc, wc)
        full = stacked.permute(0, 1, 4, 2, 5, 3).reshape(b, c, hc * s[0], wc * s[1])
        return full[:, :, : out_hw[0], : out_hw[1]]

    out = interleave(outs, cout)
    if mask is not None:
        return out, interleave(masks, 1)
    return out
