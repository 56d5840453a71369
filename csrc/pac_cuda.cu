// CUDA kernel of the PAC layers (float32 and float16 storage, float32 arithmetic).
// See pac_common.h for the definition; the CPU kernel (pac_cpu.cc) is the tested twin.
//
// Two launches on ONNX Runtime's compute stream:
//   1. kernel_map: one thread per output pixel computes K for every tap (0 where the tap
//      hits no sample) into the scratch buffer, and 1/Z;
//   2. accumulate: one thread per output pixel and group of 8 output channels sums
//      W * K * x over taps and input channels, normalises and adds the bias.
// K is computed once per pixel and tap and read by every channel group. The scratch buffer
// comes from ONNX Runtime's allocator (pac_ort.cc); nothing here allocates or synchronises.
//
// The per-thread bodies are __host__ __device__ functions: built with
// -DPACUP_CUDA_HOST_CHECK, pacup_cuda_forward_host runs the same bodies in loops on the CPU,
// which lets the tests check this file's index arithmetic on machines without a GPU.
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdint.h>

#include "pac_common.h"
#include "pac_cuda.h"

namespace {

using pacup_ort::PacArgs;
using pacup_ort::PacConfig;
using pacup_ort::PacShapes;

constexpr int kThreads = 256;
constexpr int kCoTile = 8;

#define PACUP_HD __host__ __device__ __forceinline__

PACUP_HD float ld(const float* p) {
#ifdef __CUDA_ARCH__
  return __ldg(p);
#else
  return *p;
#endif
}
PACUP_HD float ld(const __half* p) { return __half2float(*p); }
PACUP_HD void st(float* p, float v) { *p = v; }
PACUP_HD void st(__half* p, float v) { *p = __float2half_rn(v); }
PACUP_HD float fast_exp(float x) {
#ifdef __CUDA_ARCH__
  return __expf(x);
#else
  return expf(x);
#endif
}

PACUP_HD int64_t dmod(int64_t a, int64_t b) { return ((a % b) + b) % b; }

struct Tap {
  int64_t q, g;  // input index (-1: not a sample), guide index (-1: outside)
};

PACUP_HD Tap tap_1d(const PacConfig& c, bool rows, int64_t o, int t, int64_t n_in, int64_t n_g) {
  const int s = rows ? c.sy : c.sx, p = rows ? c.py : c.px, d = rows ? c.dy : c.dx, k = rows ? c.kh : c.kw;
  Tap r{-1, -1};
  if (!c.transposed) {
    const int64_t q = o * s - p + (int64_t)t * d;
    if (q >= 0 && q < n_in) r.q = r.g = q;
    return r;
  }
  const int64_t num = o + p - (int64_t)t * d;
  if (dmod(num, s) != 0) return r;
  const int64_t q = (num - dmod(num, s)) / s;
  if (q < 0 || q >= n_in) return r;
  r.q = q;
  const int64_t g = q * s + (int64_t)d * (k / 2) - p;
  r.g = (g >= 0 && g < n_g) ? g : -1;
  return r;
}

PACUP_HD int64_t centre_1d(const PacConfig& c, bool rows, int64_t o, int64_t n_g) {
  if (c.transposed) return o;
  const int s = rows ? c.sy : c.sx, p = rows ? c.py : c.px, d = rows ? c.dy : c.dx, k = rows ? c.kh : c.kw;
  const int64_t v = o * s - p + (int64_t)d * (k / 2);
  return (v >= 0 && v < n_g) ? v : -1;
}

// Thread idx (one output pixel of one image): K for every tap, and 1/Z.
template <typename T>
PACUP_HD void kernel_map_at(int64_t idx, const PacConfig& c, const PacShapes& s, const T* __restrict__ guide,
                            const T* __restrict__ centre, float* __restrict__ kbuf, float* __restrict__ zinv) {
  const int64_t npix = s.ho * s.wo;
  const int64_t b = idx / npix, pix = idx % npix, oy = pix / s.wo, ox = pix % s.wo;
  const int64_t taps = (int64_t)c.kh * c.kw;
  const int64_t cy = centre_1d(c, true, oy, s.gh), cx = centre_1d(c, false, ox, s.gw);
  const bool cvalid = cy >= 0 && cx >= 0;
  float z = 0.f;
  for (int ty = 0; ty < c.kh; ++ty) {
    const Tap ry = tap_1d(c, true, oy, ty, s.h, s.gh);
    for (int tx = 0; tx < c.kw; ++tx) {
      const int64_t t = (int64_t)ty * c.kw + tx;
      float* out = kbuf + (b * taps + t) * npix + pix;
      const Tap rx = tap_1d(c, false, ox, tx, s.w, s.gw);
      if (ry.q < 0 || rx.q < 0) {
        *out = 0.f;
        continue;
      }
      const bool gvalid = ry.g >= 0 && rx.g >= 0;
      float d2 = 0.f;
      for (int64_t f = 0; f < s.cf; ++f) {
        const int64_t plane = (b * s.cf + f) * s.gh;
        const float gv = gvalid ? ld(guide + (plane + ry.g) * s.gw + rx.g) : 0.f;
        const float cv = cvalid ? ld(centre + (plane + cy) * s.gw + cx) : 0.f;
        float diff = gv - cv;
        if (c.asymmetric) diff = fmaxf(diff, 0.f);
        d2 += diff * diff;
      }
      const float k = (c.kernel == pacup_ort::kGaussian) ? fast_exp(-0.5f * d2)
                                                         : c.alpha + powf(d2 + pacup_ort::kInverseEps, 0.5f * c.lambda);
      *out = k;
      z += (c.normalize == pacup_ort::kKernelNorm) ? k : 1.f;
    }
  }
  zinv[idx] = (c.normalize == pacup_ort::kNoNorm) ? 1.f : (z > 0.f ? 1.f / z : 0.f);
}

template <typename T>
__global__ void kernel_map(PacConfig c, PacShapes s, const T* __restrict__ guide, const T* __restrict__ centre,
                           float* __restrict__ kbuf, float* __restrict__ zinv) {
  const int64_t idx = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (idx < s.batch * s.ho * s.wo) kernel_map_at<T>(idx, c, s, guide, centre, kbuf, zinv);
}

// Thread (idx, group): output pixel idx, output channels group * kCoTile ... + kCoTile - 1.
template <typename T>
PACUP_HD void accumulate_at(int64_t idx, int64_t group, const PacConfig& c, const PacShapes& s, const T* __restrict__ x,
                            const T* __restrict__ w, const T* __restrict__ bias, const float* __restrict__ kbuf,
                            const float* __restrict__ zinv, T* __restrict__ y) {
  const int64_t npix = s.ho * s.wo;
  const int64_t b = idx / npix, pix = idx % npix, oy = pix / s.wo, ox = pix % s.wo;
  const int64_t cout = s.shared ? s.cin : s.cout;
  const int64_t co0 = group * kCoTile;
  const int64_t taps = (int64_t)c.kh * c.kw;
  float acc[kCoTile];
#pragma unroll
  for (int j = 0; j < kCoTile; ++j) acc[j] = 0.f;
  for (int ty = 0; ty < c.kh; ++ty) {
    const Tap ry = tap_1d(c, true, oy, ty, s.h, s.gh);
    if (ry.q < 0) continue;
    for (int tx = 0; tx < c.kw; ++tx) {
      const int64_t t = (int64_t)ty * c.kw + tx;
      const float k = kbuf[(b * taps + t) * npix + pix];
      if (k == 0.f) continue;  // not a sample (or K underflowed): adds nothing
      const Tap rx = tap_1d(c, false, ox, tx, s.w, s.gw);
      if (s.shared) {
        const float wk = ld(w + t) * k;
#pragma unroll
        for (int j = 0; j < kCoTile; ++j)
          if (co0 + j < cout) acc[j] += wk * ld(x + ((b * s.cin + co0 + j) * s.h + ry.q) * s.w + rx.q);
        continue;
      }
      for (int64_t ci = 0; ci < s.cin; ++ci) {
        const float xv = k * ld(x + ((b * s.cin + ci) * s.h + ry.q) * s.w + rx.q);
#pragma unroll
        for (int j = 0; j < kCoTile; ++j) {
          const int64_t co = co0 + j;
          if (co < cout) {
            const int64_t wi = c.transposed ? ((ci * cout + co) * taps + t) : ((co * s.cin + ci) * taps + t);
            acc[j] += ld(w + wi) * xv;
          }
        }
      }
    }
  }
  const float zi = zinv[idx];
#pragma unroll
  for (int j = 0; j < kCoTile; ++j) {
    const int64_t co = co0 + j;
    if (co < cout) st(y + (b * cout + co) * npix + pix, acc[j] * zi + (bias ? ld(bias + co) : 0.f));
  }
}

template <typename T>
__global__ void accumulate(PacConfig c, PacShapes s, const T* __restrict__ x, const T* __restrict__ w,
                           const T* __restrict__ bias, const float* __restrict__ kbuf, const float* __restrict__ zinv,
                           T* __restrict__ y) {
  const int64_t idx = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (idx < s.batch * s.ho * s.wo) accumulate_at<T>(idx, blockIdx.y, c, s, x, w, bias, kbuf, zinv, y);
}

size_t align_up(size_t n) { return (n + 255) / 256 * 256; }

float* zinv_of(const PacArgs& a, void* scratch) {
  const size_t taps = (size_t)a.cfg.kh * a.cfg.kw, npix = (size_t)(a.shp.ho * a.shp.wo);
  return reinterpret_cast<float*>(static_cast<char*>(scratch) + align_up(sizeof(float) * a.shp.batch * taps * npix));
}

template <typename T>
const char* launch(const PacArgs& a, cudaStream_t stream, void* scratch) {
  const PacShapes& s = a.shp;
  const int64_t npix = s.ho * s.wo, total = s.batch * npix;
  if (total == 0) return nullptr;
  float* kbuf = static_cast<float*>(scratch);
  float* zinv = zinv_of(a, scratch);
  const unsigned blocks = (unsigned)((total + kThreads - 1) / kThreads);
  kernel_map<T><<<blocks, kThreads, 0, stream>>>(a.cfg, s, static_cast<const T*>(a.guide),
                                                 static_cast<const T*>(a.centre), kbuf, zinv);
  const int64_t cout = s.shared ? s.cin : s.cout;
  const dim3 grid(blocks, (unsigned)((cout + kCoTile - 1) / kCoTile));
  accumulate<T><<<grid, kThreads, 0, stream>>>(a.cfg, s, static_cast<const T*>(a.x), static_cast<const T*>(a.weight),
                                               static_cast<const T*>(a.bias), kbuf, zinv, static_cast<T*>(a.out));
  const cudaError_t err = cudaGetLastError();
  return err == cudaSuccess ? nullptr : cudaGetErrorString(err);
}

}  // namespace

extern "C" size_t pacup_cuda_scratch_bytes(const PacArgs* a) {
  const PacShapes& s = a->shp;
  const size_t npix = (size_t)(s.ho * s.wo), taps = (size_t)a->cfg.kh * a->cfg.kw;
  return align_up(sizeof(float) * s.batch * taps * npix) + align_up(sizeof(float) * s.batch * npix);
}

extern "C" const char* pacup_cuda_forward(const PacArgs* a, int half, void* stream, void* scratch) {
  if (a->shp.ho * a->shp.wo * a->shp.batch > 0 && scratch == nullptr) return "no scratch buffer";
  if ((a->shp.shared ? a->shp.cin : a->shp.cout) > (int64_t)kCoTile * 65535) return "too many output channels";
  return half ? launch<__half>(*a, static_cast<cudaStream_t>(stream), scratch)
              : launch<float>(*a, static_cast<cudaStream_t>(stream), scratch);
}

#ifdef PACUP_CUDA_HOST_CHECK
namespace {
template <typename T>
void run_host(const PacArgs& a, void* scratch) {
  const PacShapes& s = a.shp;
  const int64_t total = s.batch * s.ho * s.wo, cout = s.shared ? s.cin : s.cout;
  float* kbuf = static_cast<float*>(scratch);
  float* zinv = zinv_of(a, scratch);
  for (int64_t i = 0; i < total; ++i)
    kernel_map_at<T>(i, a.cfg, s, static_cast<const T*>(a.guide), static_cast<const T*>(a.centre), kbuf, zinv);
  for (int64_t g = 0; g < (cout + kCoTile - 1) / kCoTile; ++g)
    for (int64_t i = 0; i < total; ++i)
      accumulate_at<T>(i, g, a.cfg, s, static_cast<const T*>(a.x), static_cast<const T*>(a.weight),
                       static_cast<const T*>(a.bias), kbuf, zinv, static_cast<T*>(a.out));
}
}  // namespace

// The CUDA kernels' per-thread bodies run in loops on the CPU (tests only).
extern "C" __attribute__((visibility("default"))) const char* pacup_cuda_forward_host(const PacArgs* a, int half,
                                                                                      void* scratch) {
  if (half) run_host<__half>(*a, scratch);
  else run_host<float>(*a, scratch);
  return nullptr;
}
#endif
