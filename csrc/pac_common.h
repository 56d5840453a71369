// PAC layer configuration and tensor views shared by the CPU kernel, the CUDA kernel and the
// ONNX Runtime registration. Plain C++ (no ONNX Runtime or CUDA types) so that nvcc and the
// host compiler both read it.
//
// The definition computed (Su et al., CVPR 2019; pacup/ops/reference.py is the ground truth):
//
//   out[p] = (1 / Z[p]) * sum_{taps t that hit a sample q} W[t] * K(c[p], g[q]) * x[q] + bias
//
// - K gaussian: exp(-0.5 * ||c - g||^2); inverse: alpha + (||d||^2 + eps)^(lambda / 2) with
//   d = g - c, or max(0, g - c) when asymmetric.
// - PacConv2d: sample q = o * stride - pad + t * dilation (input resolution, where the guide
//   lives); c is the (optionally smoothed) guide at o * stride - pad + dilation * (k // 2).
// - PacConvTranspose2d: output o receives sample q through tap t when
//   o = q * stride - pad + t * dilation; the guide lives at the output resolution, g is read at
//   q * stride + dilation * (k // 2) - pad (zero outside the image) and c at o.
// - Taps outside the input are not samples: they add nothing and are not counted in Z.
// - Z = 1 (normalize 0), the number of samples (1) or the sum of K over samples (2); where
//   Z = 0 the output is 0 before the bias.
#pragma once

#include <stdint.h>

namespace pacup_ort {

constexpr float kInverseEps = 1e-4f;  // same constant as pacup.ops._common.INV_EPS

enum KernelKind : int32_t { kGaussian = 0, kInverse = 1 };
enum Normalize : int32_t { kNoNorm = 0, kCountNorm = 1, kKernelNorm = 2 };

struct PacConfig {
  int32_t transposed = 0;
  int32_t kh = 1, kw = 1;
  int32_t sy = 1, sx = 1;
  int32_t py = 0, px = 0;
  int32_t dy = 1, dx = 1;
  int32_t opy = 0, opx = 0;  // output_padding (transposed only)
  int32_t kernel = kGaussian;
  float alpha = 0.f, lambda = 0.f;
  int32_t asymmetric = 0;
  int32_t normalize = kNoNorm;
};

// Shapes of one call. Guide and centre have (gh, gw) = input size for PacConv2d and output
// size for PacConvTranspose2d.
struct PacShapes {
  int64_t batch = 0, cin = 0, h = 0, w = 0;
  int64_t cf = 0, gh = 0, gw = 0;
  int64_t cout = 0, ho = 0, wo = 0;
  int32_t shared = 0;  // weight is one (1, 1, kh, kw) filter applied to every channel
};

// Raw pointers of one call (device or host). weight layout: (cout, cin, kh, kw) for PacConv2d,
// (cin, cout, kh, kw) for PacConvTranspose2d, (1, 1, kh, kw) when shared.
struct PacArgs {
  PacConfig cfg;
  PacShapes shp;
  const void* x = nullptr;
  const void* guide = nullptr;
  const void* centre = nullptr;  // == guide when the layer has no smoothing
  const void* weight = nullptr;
  const void* bias = nullptr;    // may be null
  void* out = nullptr;
};

inline int64_t floor_div(int64_t a, int64_t b) { return (a >= 0) ? a / b : -((-a + b - 1) / b); }
inline int64_t pos_mod(int64_t a, int64_t b) { return ((a % b) + b) % b; }

inline int64_t conv_out_size(int64_t n, int k, int s, int p, int d) { return (n + 2 * p - d * (k - 1) - 1) / s + 1; }
inline int64_t conv_transpose_out_size(int64_t n, int k, int s, int p, int op, int d) {
  return (n - 1) * s - 2 * p + d * (k - 1) + op + 1;
}

}  // namespace pacup_ort
