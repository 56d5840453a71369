"""The fast PAC path against the unfold reference, the special cases of the definition, and
argument checking."""

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from pacup.ops import PacConv2d, PacConvTranspose2d, PacPool2d, functional as PF, reference as R
from pacup.ops import pac_kernel2d

D = torch.float64


def rand(*shape, dtype=D, seed=None):
    g = torch.Generator().manual_seed(seed if seed is not None else hash(shape) % 10_000)
    return torch.randn(*shape, generator=g, dtype=dtype)


def outputs(res):
    return res if isinstance(res, tuple) else (res,)


def assert_same(a, b, tol=1e-10):
    a, b = outputs(a), outputs(b)
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x.shape == y.shape
        torch.testing.assert_close(x, y, atol=tol, rtol=tol)


@pytest.fixture(params=["bands", "one_band"])
def schedule(request, monkeypatch):
    """Eager inference runs band by band; also check a single band covering everything."""
    monkeypatch.setattr(PF, "_BAND_ELEMENTS", 200 if request.param == "bands" else 1 << 40)
    monkeypatch.setattr(PF, "_BAND_ROWS", 1 << 30)
    return request.param


@pytest.fixture(params=["bands", "one_band", "traced"])
def grad_schedule(request, monkeypatch):
    """Eager backward recomputes band by band (one band or several); traced code runs the
    checkpointed whole-grid schedule, forced here by pretending to be compiling."""
    one = request.param == "one_band"
    monkeypatch.setattr(PF, "_GRAD_BAND_ELEMENTS", 1 << 40 if one else 20)
    # The closed-form dense backward bands like the forward.
    monkeypatch.setattr(PF, "_BAND_ELEMENTS", 1 << 40 if one else 200)
    monkeypatch.setattr(PF, "_BAND_ROWS", 1 << 30)
    if request.param == "traced":
        monkeypatch.setattr(PF.torch.compiler, "is_compiling", lambda: True)
    return request.param


KERNELS = ["gaussian", "inv_0.5_-1.0", "inv_0.1_0.5_asym"]
NORMS = [dict(), dict(normalize_kernel=True), dict(normalize_mask=True), dict(normalize_kernel=True, normalize_mask=False)]


@pytest.mark.parametrize("kernel_type", KERNELS)
@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("use_mask", [False, True])
@pytest.mark.parametrize("geom", [(1, 2, 1), (2, 2, 1), (1, 4, 2), (3, 0, 1), (2, 1, 2)])
def test_conv_matches_reference(kernel_type, norm, use_mask, geom, schedule):
    s, p, d = geom
    x, f = rand(2, 3, 12, 11), rand(2, 4, 12, 11)
    w, b = rand(5, 3, 5, 5), rand(5)
    mask = (rand(2, 1, 12, 11) > -0.3).to(D) if use_mask else None
    kw = dict(kernel_type=kernel_type, mask=mask, **norm)
    assert_same(PF.pac_conv2d(x, f, w, b, s, p, d, **kw), R.pac_conv2d(x, f, w, b, s, p, d, **kw))


@pytest.mark.parametrize("kernel_type", KERNELS)
@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("use_mask", [False, True])
@pytest.mark.parametrize(
    "geom", [(2, 2, 1, 1), (2, 1, 0, 1), (3, 2, 2, 1), (2, 2, 1, 2), (1, 2, 0, 1), (4, 5, 3, 2), (2, 0, 0, 1), (2, 3, 1, 1)]
)
def test_transposed_matches_reference(kernel_type, norm, use_mask, geom, schedule):
    s, p, op, d = geom
    x, w, b = rand(2, 3, 7, 6), rand(3, 4, 5, 5), rand(4)
    size = [(n - 1) * s - 2 * p + d * 4 + op + 1 for n in (7, 6)]
    g = rand(2, 4, *size)
    mask = (rand(2, 1, 7, 6) > -0.3).to(D) if use_mask else None
    kw = dict(kernel_type=kernel_type, mask=mask, **norm)
    assert_same(
        PF.pac_conv_transpose2d(x, g, w, b, s, p, op, d, **kw), R.pac_conv_transpose2d(x, g, w, b, s, p, op, d, **kw)
    )


def test_rectangular_kernels_and_strides(schedule):
    x, f, w = rand(1, 2, 13, 10), rand(1, 3, 13, 10), rand(3, 2, 3, 5)
    kw = dict(stride=(2, 1), padding=(1, 2), dilation=(1, 2), normalize_kernel=True)
    assert_same(PF.pac_conv2d(x, f, w, **kw), R.pac_conv2d(x, f, w, **kw))
    wt = rand(2, 3, 5, 3)
    size = [(13 - 1) * 2 - 2 * 2 + 4 + 1 + 1, (10 - 1) * 3 - 2 * 1 + 2 + 2 + 1]
    g = rand(1, 3, *size)
    kw = dict(stride=(2, 3), padding=(2, 1), output_padding=(1, 2))
    assert_same(PF.pac_conv_transpose2d(x, g, wt, **kw), R.pac_conv_transpose2d(x, g, wt, **kw))


@pytest.mark.parametrize("channel_wise", [False, True])
@pytest.mark.parametrize("kernel_type", KERNELS)
def test_pool_matches_reference(channel_wise, kernel_type, schedule):
    x = rand(2, 3, 10, 9)
    f = rand(2, 3, 10, 9) if channel_wise else rand(2, 5, 10, 9)
    for s, p in [(1, 1), (2, 1), (1, 0)]:
        kw = dict(kernel_type=kernel_type, channel_wise=channel_wise)
        assert_same(PF.pac_pool2d(x, f, 3, s, p, **kw), R.pac_pool2d(x, f, 3, s, p, **kw))


def test_shared_filters_smoothing_and_precomputed_kernel(schedule):
    x, f = rand(2, 4, 9, 9), rand(2, 3, 9, 9)
    shared = rand(1, 1, 3, 3)
    assert_same(PF.pac_conv2d(x, f, shared, padding=1), R.pac_conv2d(x, f, shared, padding=1))
    smooth = torch.tensor([[1.0, 2, 1], [2, 4, 2], [1, 2, 1]], dtype=D) / 16
    w = rand(6, 4, 5, 5)
    kw = dict(padding=2, smooth_weight=smooth, normalize_kernel=True)
    assert_same(PF.pac_conv2d(x, f, w, **kw), R.pac_conv2d(x, f, w, **kw))
    kernel = pac_kernel2d(f, 5, padding=2, smooth_weight=smooth)
    assert_same(PF.pac_conv2d(x, None, w, padding=2, kernel=kernel), PF.pac_conv2d(x, f, w, padding=2, smooth_weight=smooth))
    # A precomputed kernel for the transposed layer, indexed by weight tap.
    wt = rand(4, 2, 5, 5)
    kt = rand(2, 1, 5, 5, 18, 18).abs()
    assert_same(
        PF.pac_conv_transpose2d(x, None, wt, stride=2, padding=2, output_padding=1, kernel=kt),
        R.pac_conv_transpose2d(x, None, wt, stride=2, padding=2, output_padding=1, kernel=kt),
    )


# ----------------------------------------------------------------------------- gradients


def grads(fn, tensors):
    out = outputs(fn())[0]
    proj = rand(*out.shape, seed=7)
    return torch.autograd.grad((out * proj).sum(), tensors, allow_unused=True)


def leaf(t):
    return t.clone().requires_grad_(True)


@pytest.mark.parametrize("kernel_type", ["gaussian", "inv_0.5_-1.0", "inv_0.1_0.5_asym"])
@pytest.mark.parametrize("norm", NORMS[:2])
@pytest.mark.parametrize("use_mask", [False, True])
def test_conv_gradients_match_reference(kernel_type, norm, use_mask, grad_schedule):
    x, f, w, b = leaf(rand(2, 3, 9, 8)), leaf(rand(2, 4, 9, 8)), leaf(rand(5, 3, 3, 3)), leaf(rand(5))
    alpha, lam = leaf(torch.tensor([0.5], dtype=D)), leaf(torch.tensor([-1.0], dtype=D))
    smooth = leaf(torch.full((3, 3), 1 / 9, dtype=D))
    mask = (rand(2, 1, 9, 8) > -0.3).to(D) if use_mask else None
    inv = kernel_type.startswith("inv")
    kw = dict(kernel_type=kernel_type, mask=mask, smooth_weight=smooth, **norm)
    if inv:
        kw.update(inv_alpha=alpha, inv_lambda=lam)
    ts = [x, f, w, b, smooth] + ([alpha, lam] if inv else [])
    for s, p, d in [(1, 1, 1), (2, 2, 2)]:
        gf = grads(lambda: PF.pac_conv2d(x, f, w, b, s, p, d, **kw), ts)
        gr = grads(lambda: R.pac_conv2d(x, f, w, b, s, p, d, **kw), ts)
        for a, r in zip(gf, gr):
            torch.testing.assert_close(a, r, atol=1e-10, rtol=1e-10)


@pytest.mark.parametrize("kernel_type", ["gaussian", "inv_0.5_-1.0_asym"])
@pytest.mark.parametrize("use_mask", [False, True])
def test_transposed_gradients_match_reference(kernel_type, use_mask, grad_schedule):
    x, w, b = leaf(rand(2, 3, 6, 5)), leaf(rand(3, 4, 5, 5)), leaf(rand(4))
    g = leaf(rand(2, 4, 12, 10))
    alpha, lam = leaf(torch.tensor([0.5], dtype=D)), leaf(torch.tensor([-1.0], dtype=D))
    mask = (rand(2, 1, 6, 5) > -0.3).to(D) if use_mask else None
    kw = dict(kernel_type=kernel_type, mask=mask, normalize_kernel=True)
    ts = [x, g, w, b]
    if kernel_type != "gaussian":
        kw.update(inv_alpha=alpha, inv_lambda=lam)
        ts += [alpha, lam]
    gf = grads(lambda: PF.pac_conv_transpose2d(x, g, w, b, 2, 2, 1, **kw), ts)
    gr = grads(lambda: R.pac_conv_transpose2d(x, g, w, b, 2, 2, 1, **kw), ts)
    for a, r in zip(gf, gr):
        torch.testing.assert_close(a, r, atol=1e-10, rtol=1e-10)


@pytest.mark.parametrize("norm", NORMS[:2])
@pytest.mark.parametrize("use_mask", [False, True])
def test_channel_wise_and_precomputed_kernel_gradients_match_reference(norm, use_mask, grad_schedule):
    """The cases the dense backward handles besides the networks' own: one kernel per
    channel, and a precomputed K that itself needs a gradient (conv and transposed)."""
    # Channel-wise Z normalises each output channel by its own channel's Z: Cout = Cin.
    x, f, w, b = leaf(rand(2, 3, 9, 8)), leaf(rand(2, 3, 9, 8)), leaf(rand(3, 3, 3, 3)), leaf(rand(3))
    mask = (rand(2, 1, 9, 8) > -0.3).to(D) if use_mask else None
    kw = dict(mask=mask, **norm)
    for s, p, d in [(1, 1, 1), (2, 2, 2)]:
        gf = grads(lambda: PF.pac_conv2d(x, f, w, b, s, p, d, channel_wise=True, **kw), [x, f, w, b])
        gr = grads(lambda: R.pac_conv2d(x, f, w, b, s, p, d, channel_wise=True, **kw), [x, f, w, b])
        for a, r in zip(gf, gr):
            torch.testing.assert_close(a, r, atol=1e-10, rtol=1e-10)
    k = leaf(rand(2, 1, 3, 3, 9, 8).abs())
    gf = grads(lambda: PF.pac_conv2d(x, None, w, b, 1, 1, kernel=k, **kw), [x, w, b, k])
    gr = grads(lambda: R.pac_conv2d(x, None, w, b, 1, 1, kernel=k, **kw), [x, w, b, k])
    for a, r in zip(gf, gr):
        torch.testing.assert_close(a, r, atol=1e-10, rtol=1e-10)
    xt, wt, kt = leaf(rand(2, 3, 6, 5)), leaf(rand(3, 4, 5, 5)), leaf(rand(2, 1, 5, 5, 12, 10).abs())
    mt = (rand(2, 1, 6, 5) > -0.3).to(D) if use_mask else None
    kwt = dict(mask=mt, kernel=kt, **norm)
    gf = grads(lambda: PF.pac_conv_transpose2d(xt, None, wt, None, 2, 2, 1, **kwt), [xt, wt, kt])
    gr = grads(lambda: R.pac_conv_transpose2d(xt, None, wt, None, 2, 2, 1, **kwt), [xt, wt, kt])
    for a, r in zip(gf, gr):
        torch.testing.assert_close(a, r, atol=1e-10, rtol=1e-10)


def test_gradcheck_fast_path(grad_schedule):
    if grad_schedule == "bands":
        pytest.skip("many bands are covered against the reference; gradcheck there is slow")
    x, f, w, b = leaf(rand(1, 2, 5, 5)), leaf(rand(1, 2, 5, 5)), leaf(rand(2, 2, 3, 3)), leaf(rand(2))
    assert torch.autograd.gradcheck(lambda *a: PF.pac_conv2d(*a, padding=1, normalize_kernel=True), (x, f, w, b))
    g, wt = leaf(rand(1, 2, 10, 10)), leaf(rand(2, 2, 5, 5))
    assert torch.autograd.gradcheck(lambda *a: PF.pac_conv_transpose2d(*a, stride=2, padding=2, output_padding=1), (x, g, wt))
    alpha, lam = leaf(torch.tensor([0.3], dtype=D)), leaf(torch.tensor([0.7], dtype=D))
    assert torch.autograd.gradcheck(
        lambda x, a, l: PF.pac_pool2d(x, x, 3, padding=1, kernel_type="inv_0.3_0.7_asym", inv_alpha=a, inv_lambda=l,
                                      channel_wise=True),
        (x, alpha, lam),
    )


def test_backward_keeps_no_window_buffers():
    """Under autograd only per-tap checkpoints are saved: the saved tensors add up to a few
    input-sized tensors, not kh*kw of them."""
    x, f, w = leaf(rand(1, 8, 32, 32)), leaf(rand(1, 4, 32, 32)), leaf(rand(8, 8, 5, 5))
    saved = []

    def pack(t):
        saved.append(t.numel())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        PF.pac_conv2d(x, f, w, padding=2, normalize_kernel=True).sum()
    # Checkpoints keep references to the padded inputs, not copies; unfold would save
    # 8 * 25 * 32 * 32 = 204800 elements for the input windows alone.
    assert max(saved) < 8 * 25 * 32 * 32 / 10


# ----------------------------------------------------------------------------- special cases


def test_k1_is_convolution_and_module_weights_are_pytorch_layout(schedule):
    x = rand(2, 3, 15, 14)
    conv = PacConv2d(3, 6, 5, stride=2, padding=2, dilation=1).double()
    ref = torch.nn.Conv2d(3, 6, 5, stride=2, padding=2).double()
    ref.load_state_dict({"weight": conv.weight, "bias": conv.bias})
    zero_guide = torch.zeros(2, 1, 15, 14, dtype=D)
    assert_same(conv(x, zero_guide), ref(x))
    up = PacConvTranspose2d(3, 4, 5, stride=2, padding=2, output_padding=1).double()
    ref_t = torch.nn.ConvTranspose2d(3, 4, 5, stride=2, padding=2, output_padding=1).double()
    ref_t.load_state_dict({"weight": up.weight, "bias": up.bias})
    assert_same(up(x, torch.zeros(2, 1, 30, 28, dtype=D)), ref_t(x))


def test_pool_with_k1_is_average_pooling(schedule):
    x = rand(2, 3, 11, 12)
    const = torch.ones(2, 1, 11, 12, dtype=D)
    assert_same(PF.pac_pool2d(x, const, 3, 2, 0), F.avg_pool2d(x, 3, 2, 0))
    assert_same(PF.pac_pool2d(x, const, 5, 1, 2), F.avg_pool2d(x, 5, 1, 2, count_include_pad=False))


def test_gaussian_kernel_is_one_at_the_centre():
    f = rand(1, 6, 7, 7) * 100
    k = pac_kernel2d(f, 3, padding=1)
    assert torch.equal(k[:, :, 1, 1], torch.ones_like(k[:, :, 1, 1]))


def brute_force_bilateral(img, sigma_s, sigma_r, radius):
    c, h, w = img.shape
    out = torch.zeros_like(img)
    for y in range(h):
        for x in range(w):
            num, den = torch.zeros(c, dtype=img.dtype), 0.0
            for v in range(max(0, y - radius), min(h, y + radius + 1)):
                for u in range(max(0, x - radius), min(w, x + radius + 1)):
                    ws = math.exp(-((v - y) ** 2 + (u - x) ** 2) / (2 * sigma_s**2))
                    wr = math.exp(-float(((img[:, v, u] - img[:, y, x]) ** 2).sum()) / (2 * sigma_r**2))
                    num += ws * wr * img[:, v, u]
                    den += ws * wr
            out[:, y, x] = num / den
    return out


def test_pool_with_colour_and_position_features_is_a_bilateral_filter(schedule):
    img = rand(3, 9, 10).sigmoid()
    sigma_s, sigma_r, radius = 1.5, 0.2, 2
    yy, xx = torch.meshgrid(torch.arange(9, dtype=D), torch.arange(10, dtype=D), indexing="ij")
    feats = torch.cat([img / sigma_r, yy[None] / sigma_s, xx[None] / sigma_s])[None]
    out = PF.pac_pool2d(img[None], feats, 2 * radius + 1, padding=radius)
    torch.testing.assert_close(out[0], brute_force_bilateral(img, sigma_s, sigma_r, radius), atol=1e-10, rtol=1e-10)


def test_gaussian_spatial_filter_with_rgb_features_is_a_bilateral_filter(schedule):
    """The same filter with a fixed Gaussian W, RGB features, and K*W normalisation: W is
    folded into a precomputed kernel per channel (K already normalises to sum(W*K))."""
    img = rand(3, 8, 9).sigmoid()
    sigma_s, sigma_r, radius = 1.2, 0.25, 2
    k = 2 * radius + 1
    g1 = torch.exp(-((torch.arange(k, dtype=D) - radius) ** 2) / (2 * sigma_s**2))
    spatial = torch.outer(g1, g1)
    kern = pac_kernel2d(img[None] / sigma_r, k, padding=radius) * spatial[None, None, :, :, None, None]
    out = PF.pac_pool2d(img[None], None, k, padding=radius, kernel=kern)
    torch.testing.assert_close(out[0], brute_force_bilateral(img, sigma_s, sigma_r, radius), atol=1e-10, rtol=1e-10)


def test_inverse_asymmetric_pool_is_detail_preserving_pooling(schedule):
    """DPP (Saeedan et al. 2018): weights alpha + (max(0, x_q - x~_p)^2 + eps)^(lambda/2)
    against the smoothed centre, channel by channel."""
    x = rand(1, 2, 8, 8)
    alpha, lam = 0.25, 1.5  # exact in float32, the dtype the module stores them in
    pool = PacPool2d(3, stride=2, padding=1, kernel_type=f"inv_{alpha}_{lam}_asym_fixed",
                     smooth_kernel_type="gaussian_3", channel_wise=True).double()
    out = pool(x, x)
    smooth = F.conv2d(x, (torch.tensor([[1.0, 2, 1], [2, 4, 2], [1, 2, 1]], dtype=D) / 16).expand(2, 1, 3, 3), padding=1, groups=2)
    expect = torch.zeros_like(out)
    for c, oy, ox in itertools.product(range(2), range(4), range(4)):
        num = den = 0.0
        for v in range(2 * oy - 1, 2 * oy + 2):
            for u in range(2 * ox - 1, 2 * ox + 2):
                if 0 <= v < 8 and 0 <= u < 8:
                    diff = max(0.0, float(x[0, c, v, u] - smooth[0, c, 2 * oy, 2 * ox]))
                    wgt = alpha + (diff**2 + 1e-4) ** (lam / 2)
                    num += wgt * float(x[0, c, v, u])
                    den += wgt
        expect[0, c, oy, ox] = num / den
    torch.testing.assert_close(out, expect, atol=1e-10, rtol=1e-10)


def test_linear_filler_is_bilinear_upsampling():
    up = PacConvTranspose2d(2, 2, 5, stride=2, padding=2, output_padding=1, filler="linear").double()
    x = rand(1, 2, 6, 6)
    out = up(x, torch.zeros(1, 1, 12, 12, dtype=D))
    torch.testing.assert_close(out[:, :, ::2, ::2], x)
    torch.testing.assert_close(out[:, :, 1:-1:2, ::2], (x[:, :, :-1] + x[:, :, 1:]) / 2)


def test_mask_output_and_invalid_samples_never_leak(schedule):
    x = rand(1, 1, 8, 8)
    mask = torch.ones(1, 1, 8, 8, dtype=D)
    mask[:, :, :, :4] = 0
    poisoned = x.clone()
    poisoned[mask == 0] = 1e6
    w = torch.ones(1, 1, 3, 3, dtype=D)
    out, out_mask = PF.pac_conv2d(poisoned, rand(1, 2, 8, 8), w, padding=1, mask=mask, normalize_kernel=True)
    assert out.abs().max() < 100
    assert torch.equal(out_mask[0, 0, 0], torch.tensor([0, 0, 0, 1, 1, 1, 1, 1], dtype=D))
    assert torch.all(out[out_mask == 0] == 0)
    up, up_mask = PF.pac_conv_transpose2d(poisoned, rand(1, 2, 16, 16), torch.ones(1, 1, 5, 5, dtype=D), stride=2,
                                          padding=2, output_padding=1, mask=mask, normalize_kernel=True)
    assert up.abs().max() < 100 and up_mask.shape == (1, 1, 16, 16)


# ----------------------------------------------------------------------------- dtypes, batch


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_low_precision_dtypes(dtype, schedule):
    x, f, w = rand(2, 4, 10, 10, dtype=torch.float32), rand(2, 3, 10, 10, dtype=torch.float32), rand(4, 4, 3, 3, dtype=torch.float32) / 4
    ref = R.pac_conv2d(x, f, w, padding=1, normalize_kernel=True)
    out = PF.pac_conv2d(x.to(dtype), f.to(dtype), w.to(dtype), padding=1, normalize_kernel=True)
    assert out.dtype == dtype
    tol = {torch.float32: 1e-5, torch.float16: 1e-2, torch.bfloat16: 5e-2}[dtype]
    torch.testing.assert_close(out.float(), ref, atol=tol, rtol=tol)
    wt = rand(4, 4, 5, 5, dtype=torch.float32) / 4
    g = rand(2, 3, 20, 20, dtype=torch.float32)
    ref_t = R.pac_conv_transpose2d(x, g, wt, stride=2, padding=2, output_padding=1)
    out_t = PF.pac_conv_transpose2d(x.to(dtype), g.to(dtype), wt.to(dtype), stride=2, padding=2, output_padding=1)
    torch.testing.assert_close(out_t.float(), ref_t, atol=tol * 4, rtol=tol * 4)


def test_guide_in_another_float_dtype_is_cast_to_the_input_dtype():
    x, f, w = rand(1, 2, 6, 6).float(), rand(1, 2, 6, 6), rand(2, 2, 3, 3).float()
    out = PF.pac_conv2d(x, f, w, padding=1)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, PF.pac_conv2d(x, f.float(), w, padding=1))


def test_batch_elements_are_independent():
    x, f, w = rand(3, 2, 8, 8), rand(3, 2, 8, 8), rand(2, 2, 3, 3)
    full = PF.pac_conv2d(x, f, w, padding=1, normalize_kernel=True)
    for i in range(3):
        assert_same(full[i : i + 1], PF.pac_conv2d(x[i : i + 1], f[i : i + 1], w, padding=1, normalize_kernel=True))


# ----------------------------------------------------------------------------- modules


def test_modules_hold_parameters_and_match_functional():
    conv = PacConv2d(3, 4, 3, padding=1, kernel_type="inv_0.1_0.5", smooth_kernel_type="full_3")
    names = {n for n, _ in conv.named_parameters()}
    assert names == {"weight", "bias", "inv_alpha", "inv_lambda", "smooth_weight"}
    fixed = PacConv2d(3, 4, 3, padding=1, kernel_type="inv_0.1_0.5_fixed", smooth_kernel_type="gaussian_3")
    assert {n for n, _ in fixed.named_parameters()} == {"weight", "bias"}
    x, f = torch.randn(1, 3, 8, 8), torch.randn(1, 2, 8, 8)
    out = conv(x, f)
    out.sum().backward()
    assert all(p.grad is not None for p in conv.parameters())
    assert "kernel_type='inv_0.1_0.5'" in repr(conv)
    assert PacConvTranspose2d(2, 2, 5, 2, 2, 1).output_size((7, 9)) == (14, 18)


# ----------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: PF.pac_conv2d(rand(1, 2, 8, 8), rand(1, 2, 7, 8), rand(2, 2, 3, 3)), "spatial size"),
        (lambda: PF.pac_conv2d(rand(1, 2, 8, 8), rand(2, 2, 8, 8), rand(2, 2, 3, 3)), "batch size"),
        (lambda: PF.pac_conv2d(rand(1, 2, 8, 8), rand(1, 2, 8, 8), rand(2, 3, 3, 3)), "input channels"),
        (lambda: PF.pac_conv2d(rand(1, 2, 8, 8), rand(1, 2, 8, 8), rand(2, 2, 4, 4)), "odd"),
        (lambda: PF.pac_conv2d(rand(1, 2, 8, 8), rand(1, 2, 8, 8), rand(2, 2, 3, 3), kernel_type="box"), "unknown kernel_type"),
        (lambda: PF.pac_conv2d(rand(1, 2, 8, 8), rand(1, 2, 8, 8), rand(2, 2, 3, 3), mask=rand(1, 2, 8, 8)), "mask must have shape"),
        (lambda: PF.pac_conv2d(rand(2, 8, 8), rand(1, 2, 8, 8), rand(2, 2, 3, 3)), "(B, C, H, W)"),
        (lambda: PF.pac_conv2d(rand(1, 2, 8, 8), rand(1, 2, 8, 8).long(), rand(2, 2, 3, 3)), "floating-point"),
        (lambda: PF.pac_pool2d(rand(1, 2, 8, 8), rand(1, 3, 8, 8), 3, channel_wise=True), "channel_wise"),
        (lambda: PF.pac_conv2d(rand(1, 2, 8, 8), None, rand(2, 2, 3, 3), kernel=rand(1, 1, 3, 3, 5, 5)), "kernel must have shape"),
        (lambda: PF.pac_conv_transpose2d(rand(1, 2, 8, 8), rand(1, 2, 15, 15), rand(2, 2, 5, 5), stride=2, padding=2, output_padding=1), "size of the output"),
        (lambda: PF.pac_conv_transpose2d(rand(1, 2, 8, 8), rand(1, 2, 16, 16), rand(2, 2, 5, 5), stride=2, padding=2, output_padding=2), "output_padding"),
        (lambda: PacConv2d(2, 3, 3, shared_filters=True), "shared_filters"),
        (lambda: PacConv2d(2, 3, 3, filler="linear"), "in_channels == out_channels"),
        (lambda: PacConv2d(2, 2, 3, filler="gauss"), "unknown filler"),
        (lambda: PacPool2d(3, smooth_kernel_type="median_3"), "smooth_kernel_type"),
        (lambda: PacConv2d(2, 2, 3)(rand(1, 3, 8, 8).float(), rand(1, 1, 8, 8).float()), "expects 2 input channels"),
    ],
)
def test_bad_arguments_raise_value_error(call, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        call()
