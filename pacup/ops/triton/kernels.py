# No ``from __future__ import annotations`` here: Triton reads the ``tl.constexpr``
# annotations of the kernels' parameters.
"""Triton kernels of the fused PAC operations (forward and backward).

All tensors are contiguous NCHW. One kernel family serves both layers: an output pixel
``p`` of the layer sums, over the window taps ``t`` that reach it, ``W_t x_q`` weighted by
``K(c_p, f_q)``, where

========================  ==========================================  ===============================
                          ``pac_conv2d``                              ``pac_conv_transpose2d``
========================  ==========================================  ===============================
output grid of a program  all output pixels ``o``                     one phase ``r``: ``p = o*s + r``
sample ``q`` of tap ``t``  ``o*s - pad + t*d``                        ``o + (r + pad - t*d) / s``
feature ``f_q`` at        guide[q] (input resolution)                 guide[q*s + d*(k//2) - pad]
centre ``c_p`` at         guide[o*s - pad + d*(k//2)]                 guide[p]
========================  ==========================================  ===============================

For the transposed layer a tap reaches phase ``r`` only when ``(r + pad - t*d)`` is a
multiple of ``s`` (the sub-pixel decomposition): each program serves one phase (a
compile-time constant of its branch) and skips the other taps with a uniform scalar
branch, so no inserted zero is ever multiplied. Guide positions outside the guide read as 0
(zero padding), samples outside the input do not exist (they add nothing and are not
counted in Z). Nothing of size C*kh*kw*H*W is ever written: K is recomputed where needed.

Kernels:
- ``pside_kernel``: per output pixel. MODE 0 is the forward pass (numerator, Z, division,
  bias); MODE 1 is the backward pass for the centre features (and the inverse kernel's
  alpha and lambda).
- ``qside_kernel``: per input sample, backward for the input and for the tap features.
- ``dweight_kernel``: per (tap, chunk of output pixels), backward for the filter.

Backward notation: ``gn = dL/dout / Z`` (0 where Z = 0; computed on load from dL/dout and
Z), ``y = num / Z`` the output before the bias, ``s_p = sum_o gn_p[o] * y_p[o]``. Then
``dL/dK_pq = <gn_p, W_t x_q> - [Z sums K] * s_p``. ``pside_kernel`` (MODE 1) recomputes
``num`` while it walks the taps, so the output is not kept for the backward pass (an
in-place ReLU after the layer stays legal), and writes ``s`` for ``qside_kernel``.
"""

import triton
import triton.language as tl

# Sums are written as tl.reduce with Triton's own add combiner instead of tl.sum, and zeros
# as tl.full instead of tl.zeros: tl.sum and tl.zeros are @jit functions of Triton's
# standard library, fixed at Triton's import as compiled or interpreted. Avoiding them lets
# an interpreted copy of this module run CPU tensors in a process whose Triton is compiled
# (the interpreter recognises this combiner and sums with numpy).
from triton.language.standard import _sum_combine

# Codes (see ops.py): KTYPE 0 gaussian, 1 inverse, 2 asymmetric inverse; ZMODE 0 no
# normalisation, 1 Z counts the samples, 2 Z sums K over the samples.


@triton.jit
def _adapt(fq, cp, alpha, lam, KTYPE: tl.constexpr, EPS: tl.constexpr):
    """K and its derivatives for feature blocks ``fq``, ``cp`` [P, CF] (float32).

    Returns (K, dK/dd2, diff, dK/dlambda) with d2 = sum(diff^2), diff = f_q - c_p (clamped at
    0 for the asymmetric kernel, whose derivative is then 0 as it should be)."""
    diff = fq - cp
    if KTYPE == 2:
        diff = tl.maximum(diff, 0.0)
    d2 = tl.reduce(diff * diff, 1, _sum_combine)
    if KTYPE == 0:
        k = tl.exp(-0.5 * d2)
        dk = -0.5 * k
        dlam = d2 * 0.0
    else:
        base = d2 + EPS
        logb = tl.log(base)
        pw = tl.exp(0.5 * lam * logb)
        k = alpha + pw
        dk = 0.5 * lam * pw / base
        dlam = 0.5 * logb * pw
    return k, dk, diff, dlam


@triton.jit
def _mm(a, b, acc, DOT_PREC: tl.constexpr):
    """tl.dot with float32 accumulation. DOT_PREC "upcast" multiplies in float32: only for
    bfloat16 under Triton's interpreter, whose dot cannot multiply bfloat16 (it holds them
    as uint16); products of bfloat16 numbers are exact in float32, so the result is the
    same as a bfloat16 dot with float32 accumulation."""
    if DOT_PREC == "upcast":
        return tl.dot(a.to(tl.float32), b.to(tl.float32), acc, input_precision="ieee")
    else:
        return tl.dot(a, b, acc, input_precision=DOT_PREC)


@triton.jit
def _load_feat(base, y, x, ok, H, W, CF, BCF: tl.constexpr):
    """Guide features [P, BCF] (float32) at positions (y, x); 0 outside the image or where
    not ``ok``."""
    cf = tl.arange(0, BCF)
    inb = ok & (y >= 0) & (y < H) & (x >= 0) & (x < W)
    ptr = base + cf[None, :] * (H * W) + (y * W + x)[:, None]
    return tl.load(ptr, mask=inb[:, None] & (cf[None, :] < CF), other=0.0).to(tl.float32)


@triton.jit
def _load_pix(base, y, x, ok, H, W, C, BC: tl.constexpr):
    """A [P, BC] block of an NCHW tensor (its own dtype) at (y, x), 0 where not ``ok``."""
    c = tl.arange(0, BC)
    ptr = base + c[None, :] * (H * W) + (y * W + x)[:, None]
    return tl.load(ptr, mask=ok[:, None] & (c[None, :] < C), other=0.0)


@triton.jit
def _load_gn(go_base, z_base, y, x, ok, H, W, C, BC: tl.constexpr, ZMODE: tl.constexpr):
    """dL/dout / Z as a [P, BC] float32 block (0 where Z = 0)."""
    gn = _load_pix(go_base, y, x, ok, H, W, C, BC).to(tl.float32)
    if ZMODE != 0:
        z = tl.load(z_base + y * W + x, mask=ok, other=0.0)
        gn = gn * tl.where(z > 0, 1.0 / tl.where(z > 0, z, 1.0), 0.0)[:, None]
    return gn


@triton.jit
def _load_tap_weight(w_ptr, ty, tx, CIN, COUT, KW: tl.constexpr, BCI: tl.constexpr, BCO: tl.constexpr,
                     TRANS: tl.constexpr):
    """The tap's filter from the (kh, kw, Cin, Cout) contiguous weight: [BCI, BCO], or
    [BCO, BCI] with TRANS."""
    ci = tl.arange(0, BCI)
    co = tl.arange(0, BCO)
    base = w_ptr + (ty * KW + tx) * CIN * COUT
    if TRANS:
        ptr = base + ci[None, :] * COUT + co[:, None]
        m = (ci[None, :] < CIN) & (co[:, None] < COUT)
    else:
        ptr = base + ci[:, None] * COUT + co[None, :]
        m = (ci[:, None] < CIN) & (co[None, :] < COUT)
    return tl.load(ptr, mask=m, other=0.0)


@triton.jit
def _pside_phase(
    x_ptr, g_ptr, w_ptr, bias_ptr, kp_ptr, out_ptr, z_ptr, go_ptr, s_ptr, gg_ptr, kg_ptr,
    b, tile, CIN, COUT, CF, HI, WI, HG, WG, HO, WO, NOX, NPIX,
    RY: tl.constexpr, RX: tl.constexpr,
    MODE: tl.constexpr, TRANSPOSED: tl.constexpr,
    KH: tl.constexpr, KW: tl.constexpr, SY: tl.constexpr, SX: tl.constexpr,
    PY: tl.constexpr, PX: tl.constexpr, DY: tl.constexpr, DX: tl.constexpr,
    KTYPE: tl.constexpr, ZMODE: tl.constexpr, HAS_BIAS: tl.constexpr, EPS: tl.constexpr,
    NEED_KP: tl.constexpr, DOT_PREC: tl.constexpr,
    BLOCK_P: tl.constexpr, BCI: tl.constexpr, BCO: tl.constexpr, BCF: tl.constexpr,
):
    offs = tile * BLOCK_P + tl.arange(0, BLOCK_P)
    pin = offs < NPIX
    oy = offs // NOX
    ox = offs % NOX
    if TRANSPOSED:
        py = oy * SY + RY
        px = ox * SX + RX
        cy = py
        cx = px
    else:
        py = oy
        px = ox
        cy = oy * SY - PY + (KH // 2) * DY
        cx = ox * SX - PX + (KW // 2) * DX
    pok = pin & (py < HO) & (px < WO)
    b64 = b.to(tl.int64)
    x_base = x_ptr + b64 * CIN * HI * WI
    g_base = g_ptr + b64 * CF * HG * WG
    co = tl.arange(0, BCO)
    centre = _load_feat(g_base, cy, cx, pok, HG, WG, CF, BCF)
    if KTYPE != 0:
        alpha = tl.load(kp_ptr).to(tl.float32)
        lam = tl.load(kp_ptr + 1).to(tl.float32)
    else:
        alpha = 0.0
        lam = 0.0
    if MODE == 0:
        acc = tl.full((BLOCK_P, BCO), 0.0, tl.float32)
        zacc = tl.full((BLOCK_P,), 0.0, tl.float32)
    else:
        gn = _load_gn(go_ptr + b64 * COUT * HO * WO, z_ptr + b64 * HO * WO, py, px, pok, HO, WO, COUT, BCO, ZMODE)
        # dL/dc_p = sum_t (a_t - s) e_t with e_t = dK_t/dc_p: s is known only after the last
        # tap, so sum_t a_t e_t and sum_t e_t are kept apart (likewise for alpha, lambda).
        gc = tl.full((BLOCK_P, BCF), 0.0, tl.float32)
        ka = tl.full((BLOCK_P,), 0.0, tl.float32)
        kl = tl.full((BLOCK_P,), 0.0, tl.float32)
        if ZMODE == 2:
            num = tl.full((BLOCK_P, BCO), 0.0, tl.float32)
            ge = tl.full((BLOCK_P, BCF), 0.0, tl.float32)
            kv = tl.full((BLOCK_P,), 0.0, tl.float32)
            klv = tl.full((BLOCK_P,), 0.0, tl.float32)
    # Runtime loops over the taps (not unrolled: unrolled, the compiler keeps several
    # taps' blocks live at once and spills). For the transposed layer a tap reaches this
    # phase when (r + pad - t*d) is a multiple of s; the shift by s*KH*DY keeps the
    # numbers non-negative.
    for ty in range(KH):
        ny = RY + PY - ty * DY + SY * KH * DY
        if TRANSPOSED:
            tap_y = ny % SY == 0
            qy = oy + (ny // SY - KH * DY)
            fy = qy * SY + (KH // 2) * DY - PY
        else:
            tap_y = True
            qy = oy * SY - PY + ty * DY
            fy = qy
        if tap_y:
            vy = (qy >= 0) & (qy < HI)
            for tx in range(KW):
                nx = RX + PX - tx * DX + SX * KW * DX
                if TRANSPOSED:
                    tap_x = nx % SX == 0
                    qx = ox + (nx // SX - KW * DX)
                    fx = qx * SX + (KW // 2) * DX - PX
                else:
                    tap_x = True
                    qx = ox * SX - PX + tx * DX
                    fx = qx
                if tap_x:
                    v = pok & vy & (qx >= 0) & (qx < WI)
                    vf = v.to(tl.float32)
                    fq = _load_feat(g_base, fy, fx, v, HG, WG, CF, BCF)
                    k, dk, diff, dlam = _adapt(fq, centre, alpha, lam, KTYPE, EPS)
                    xq = _load_pix(x_base, qy, qx, v, HI, WI, CIN, BCI)
                    wt = _load_tap_weight(w_ptr, ty, tx, CIN, COUT, KW, BCI, BCO, False)
                    if MODE == 0:
                        xk = (xq.to(tl.float32) * (k * vf)[:, None]).to(xq.dtype)
                        acc = _mm(xk, wt, acc, DOT_PREC)
                        if ZMODE == 2:
                            zacc += k * vf
                        elif ZMODE == 1:
                            zacc += vf
                    else:
                        xw = _mm(xq, wt, None, DOT_PREC)
                        a = tl.reduce(xw * gn, 1, _sum_combine)
                        e = (-2.0 * dk * vf)[:, None] * diff
                        gc += a[:, None] * e
                        if NEED_KP:
                            ka += a * vf
                            kl += a * vf * dlam
                        if ZMODE == 2:
                            num += xw * (k * vf)[:, None]
                            ge += e
                            if NEED_KP:
                                kv += vf
                                klv += vf * dlam
    if MODE == 0:
        if ZMODE != 0:
            nz = zacc > 0
            acc = tl.where(nz[:, None], acc / tl.where(nz, zacc, 1.0)[:, None], 0.0)
        if HAS_BIAS:
            acc += tl.load(bias_ptr + co, mask=co < COUT, other=0.0).to(tl.float32)[None, :]
        optr = out_ptr + b64 * COUT * HO * WO + co[None, :] * (HO * WO) + (py * WO + px)[:, None]
        tl.store(optr, acc.to(out_ptr.dtype.element_ty), mask=pok[:, None] & (co[None, :] < COUT))
        if ZMODE != 0:
            tl.store(z_ptr + b64 * HO * WO + py * WO + px, zacc, mask=pok)
    else:
        if ZMODE == 2:
            zp = tl.load(z_ptr + b64 * HO * WO + py * WO + px, mask=pok, other=0.0)
            y = num * tl.where(zp > 0, 1.0 / tl.where(zp > 0, zp, 1.0), 0.0)[:, None]
            sp = tl.reduce(gn * y, 1, _sum_combine)
            tl.store(s_ptr + b64 * HO * WO + py * WO + px, sp, mask=pok)
            gc -= sp[:, None] * ge
            if NEED_KP:
                ka -= sp * kv
                kl -= sp * klv
        # Centre positions of distinct output pixels are distinct: a plain read-add-write.
        cf = tl.arange(0, BCF)
        cok = pok & (cy >= 0) & (cy < HG) & (cx >= 0) & (cx < WG)
        gptr = gg_ptr + b64 * CF * HG * WG + cf[None, :] * (HG * WG) + (cy * WG + cx)[:, None]
        gm = cok[:, None] & (cf[None, :] < CF)
        tl.store(gptr, tl.load(gptr, mask=gm, other=0.0) + gc, mask=gm)
        if NEED_KP:
            tl.atomic_add(kg_ptr, tl.reduce(ka, 0, _sum_combine))
            tl.atomic_add(kg_ptr + 1, tl.reduce(kl, 0, _sum_combine))


@triton.jit
def pside_kernel(
    x_ptr, g_ptr, w_ptr, bias_ptr, kp_ptr, out_ptr, z_ptr, go_ptr, s_ptr, gg_ptr, kg_ptr,
    CIN, COUT, CF, HI, WI, HG, WG, HO, WO, NOX, NPIX,
    MODE: tl.constexpr, TRANSPOSED: tl.constexpr,
    KH: tl.constexpr, KW: tl.constexpr, SY: tl.constexpr, SX: tl.constexpr,
    PY: tl.constexpr, PX: tl.constexpr, DY: tl.constexpr, DX: tl.constexpr,
    KTYPE: tl.constexpr, ZMODE: tl.constexpr, HAS_BIAS: tl.constexpr, EPS: tl.constexpr,
    NEED_KP: tl.constexpr, DOT_PREC: tl.constexpr,
    BLOCK_P: tl.constexpr, BCI: tl.constexpr, BCO: tl.constexpr, BCF: tl.constexpr,
):
    """Grid: (pixel tiles of one phase grid, batch * phases). Conv: one phase."""
    tile = tl.program_id(0)
    pid1 = tl.program_id(1)
    if TRANSPOSED:
        b = pid1 // (SY * SX)
        ph = pid1 % (SY * SX)
        # One branch per phase, each with its own compile-time set of taps.
        for ry in tl.static_range(SY):
            for rx in tl.static_range(SX):
                if ph == ry * SX + rx:
                    _pside_phase(
                        x_ptr, g_ptr, w_ptr, bias_ptr, kp_ptr, out_ptr, z_ptr, go_ptr, s_ptr, gg_ptr, kg_ptr,
                        b, tile, CIN, COUT, CF, HI, WI, HG, WG, HO, WO, NOX, NPIX,
                        ry, rx, MODE, TRANSPOSED, KH, KW, SY, SX, PY, PX, DY, DX,
                        KTYPE, ZMODE, HAS_BIAS, EPS, NEED_KP, DOT_PREC, BLOCK_P, BCI, BCO, BCF,
                    )
    else:
        _pside_phase(
            x_ptr, g_ptr, w_ptr, bias_ptr, kp_ptr, out_ptr, z_ptr, go_ptr, s_ptr, gg_ptr, kg_ptr,
            pid1, tile, CIN, COUT, CF, HI, WI, HG, WG, HO, WO, NOX, NPIX,
            0, 0, MODE, TRANSPOSED, KH, KW, SY, SX, PY, PX, DY, DX,
            KTYPE, ZMODE, HAS_BIAS, EPS, NEED_KP, DOT_PREC, BLOCK_P, BCI, BCO, BCF,
        )


@triton.jit
def qside_kernel(
    x_ptr, g_ptr, w_ptr, kp_ptr, go_ptr, z_ptr, s_ptr, gx_ptr, gg_ptr,
    CIN, COUT, CF, HI, WI, HG, WG, HO, WO,
    TRANSPOSED: tl.constexpr,
    KH: tl.constexpr, KW: tl.constexpr, SY: tl.constexpr, SX: tl.constexpr,
    PY: tl.constexpr, PX: tl.constexpr, DY: tl.constexpr, DX: tl.constexpr,
    KTYPE: tl.constexpr, ZMODE: tl.constexpr, EPS: tl.constexpr,
    NEED_X: tl.constexpr, NEED_G: tl.constexpr, DOT_PREC: tl.constexpr,
    BLOCK_P: tl.constexpr, BCI: tl.constexpr, BCO: tl.constexpr, BCF: tl.constexpr,
):
    """Grid: (tiles of input samples, batch). Gathers, for each sample q, every output
    pixel p whose window holds it: dL/dx_q = sum K_pq W_t^T gn_p and the tap-feature part of
    dL/df_q."""
    tile = tl.program_id(0)
    b = tl.program_id(1)
    offs = tile * BLOCK_P + tl.arange(0, BLOCK_P)
    qok = offs < HI * WI
    qy = offs // WI
    qx = offs % WI
    if TRANSPOSED:
        fy = qy * SY + (KH // 2) * DY - PY
        fx = qx * SX + (KW // 2) * DX - PX
    else:
        fy = qy
        fx = qx
    b64 = b.to(tl.int64)
    g_base = g_ptr + b64 * CF * HG * WG
    go_base = go_ptr + b64 * COUT * HO * WO
    z_base = z_ptr + b64 * HO * WO
    fq = _load_feat(g_base, fy, fx, qok, HG, WG, CF, BCF)
    if KTYPE != 0:
        alpha = tl.load(kp_ptr).to(tl.float32)
        lam = tl.load(kp_ptr + 1).to(tl.float32)
    else:
        alpha = 0.0
        lam = 0.0
    if NEED_G:
        xq = _load_pix(x_ptr + b64 * CIN * HI * WI, qy, qx, qok, HI, WI, CIN, BCI)
    gx = tl.full((BLOCK_P, BCI), 0.0, tl.float32)
    gf = tl.full((BLOCK_P, BCF), 0.0, tl.float32)
    for ty in range(KH):
        if TRANSPOSED:
            py = qy * SY - PY + ty * DY
            vy = (py >= 0) & (py < HO)
            cy = py
        else:
            ny = qy + PY - ty * DY
            py = ny // SY
            vy = (ny >= 0) & (py < HO)
            if SY > 1:
                vy = vy & (ny % SY == 0)
            cy = py * SY - PY + (KH // 2) * DY
        for tx in range(KW):
            if TRANSPOSED:
                px = qx * SX - PX + tx * DX
                vx = (px >= 0) & (px < WO)
                cx = px
            else:
                nx = qx + PX - tx * DX
                px = nx // SX
                vx = (nx >= 0) & (px < WO)
                if SX > 1:
                    vx = vx & (nx % SX == 0)
                cx = px * SX - PX + (KW // 2) * DX
            v = qok & vy & vx
            vf = v.to(tl.float32)
            cp = _load_feat(g_base, cy, cx, v, HG, WG, CF, BCF)
            k, dk, diff, dlam = _adapt(fq, cp, alpha, lam, KTYPE, EPS)
            wtt = _load_tap_weight(w_ptr, ty, tx, CIN, COUT, KW, BCI, BCO, True)
            gnp = _load_gn(go_base, z_base, py, px, v, HO, WO, COUT, BCO, ZMODE).to(wtt.dtype)
            u = _mm(gnp, wtt, None, DOT_PREC)
            if NEED_X:
                gx += u * (k * vf)[:, None]
            if NEED_G:
                a = tl.reduce(u * xq.to(tl.float32), 1, _sum_combine)
                if ZMODE == 2:
                    a = a - tl.load(s_ptr + b64 * HO * WO + py * WO + px, mask=v, other=0.0)
                gf += (2.0 * a * vf * dk)[:, None] * diff
    if NEED_X:
        ci = tl.arange(0, BCI)
        xptr = gx_ptr + b64 * CIN * HI * WI + ci[None, :] * (HI * WI) + (qy * WI + qx)[:, None]
        tl.store(xptr, gx.to(gx_ptr.dtype.element_ty), mask=qok[:, None] & (ci[None, :] < CIN))
    if NEED_G:
        # Each sample has its own feature position: a plain read-add-write (the centre
        # part was written by pside_kernel before this kernel ran).
        cf = tl.arange(0, BCF)
        fok = qok & (fy >= 0) & (fy < HG) & (fx >= 0) & (fx < WG)
        gptr = gg_ptr + b64 * CF * HG * WG + cf[None, :] * (HG * WG) + (fy * WG + fx)[:, None]
        gm = fok[:, None] & (cf[None, :] < CF)
        tl.store(gptr, tl.load(gptr, mask=gm, other=0.0) + gf, mask=gm)


@triton.jit
def dweight_kernel(
    x_ptr, g_ptr, kp_ptr, go_ptr, z_ptr, dw_ptr,
    CIN, COUT, CF, HI, WI, HG, WG, HO, WO, NCHUNK, TILES_PER_CHUNK,
    TRANSPOSED: tl.constexpr,
    KH: tl.constexpr, KW: tl.constexpr, SY: tl.constexpr, SX: tl.constexpr,
    PY: tl.constexpr, PX: tl.constexpr, DY: tl.constexpr, DX: tl.constexpr,
    KTYPE: tl.constexpr, ZMODE: tl.constexpr, EPS: tl.constexpr, DOT_PREC: tl.constexpr,
    BLOCK_P: tl.constexpr, BCI: tl.constexpr, BCO: tl.constexpr, BCF: tl.constexpr,
):
    """Grid: (taps, batch * chunks). dW_t += sum_p gn_p (K_pq x_q)^T over a chunk of the
    output pixels the tap reaches; partial sums go to ``dw_ptr`` (float32, (taps, Cout, Cin))
    with one atomic add per program."""
    t = tl.program_id(0)
    pid1 = tl.program_id(1)
    b = pid1 // NCHUNK
    chunk = pid1 % NCHUNK
    ty = t // KW
    tx = t % KW
    if TRANSPOSED:
        # The tap's phase r = (t*d - pad) mod s and its shift (r + pad - t*d) / s.
        ry = ((ty * DY - PY) % SY + SY) % SY
        rx = ((tx * DX - PX) % SX + SX) % SX
        dly = (ry + PY - ty * DY) // SY
        dlx = (rx + PX - tx * DX) // SX
        noy = (HO - ry + SY - 1) // SY
        nox = (WO - rx + SX - 1) // SX
    else:
        noy = HO
        nox = WO
    npix = noy * nox
    b64 = b.to(tl.int64)
    x_base = x_ptr + b64 * CIN * HI * WI
    g_base = g_ptr + b64 * CF * HG * WG
    go_base = go_ptr + b64 * COUT * HO * WO
    z_base = z_ptr + b64 * HO * WO
    if KTYPE != 0:
        alpha = tl.load(kp_ptr).to(tl.float32)
        lam = tl.load(kp_ptr + 1).to(tl.float32)
    else:
        alpha = 0.0
        lam = 0.0
    acc = tl.full((BCO, BCI), 0.0, tl.float32)
    for it in range(TILES_PER_CHUNK):
        offs = (chunk * TILES_PER_CHUNK + it) * BLOCK_P + tl.arange(0, BLOCK_P)
        pin = offs < npix
        oy = offs // nox
        ox = offs % nox
        if TRANSPOSED:
            py = oy * SY + ry
            px = ox * SX + rx
            qy = oy + dly
            qx = ox + dlx
            fy = qy * SY + (KH // 2) * DY - PY
            fx = qx * SX + (KW // 2) * DX - PX
            cy = py
            cx = px
        else:
            py = oy
            px = ox
            qy = oy * SY - PY + ty * DY
            qx = ox * SX - PX + tx * DX
            fy = qy
            fx = qx
            cy = oy * SY - PY + (KH // 2) * DY
            cx = ox * SX - PX + (KW // 2) * DX
        v = pin & (qy >= 0) & (qy < HI) & (qx >= 0) & (qx < WI)
        fq = _load_feat(g_base, fy, fx, v, HG, WG, CF, BCF)
        cp = _load_feat(g_base, cy, cx, v, HG, WG, CF, BCF)
        k, dk, diff, dlam = _adapt(fq, cp, alpha, lam, KTYPE, EPS)
        xq = _load_pix(x_base, qy, qx, v, HI, WI, CIN, BCI)
        xk = (xq.to(tl.float32) * (k * v.to(tl.float32))[:, None]).to(xq.dtype)
        gnp = _load_gn(go_base, z_base, py, px, v, HO, WO, COUT, BCO, ZMODE).to(xk.dtype)
        acc = _mm(tl.trans(gnp), xk, acc, DOT_PREC)
    co = tl.arange(0, BCO)
    ci = tl.arange(0, BCI)
    dptr = dw_ptr + t * COUT * CIN + co[:, None] * CIN + ci[None, :]
    tl.atomic_add(dptr, acc, mask=(co[:, None] < COUT) & (ci[None, :] < CIN))
