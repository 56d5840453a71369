// CPU kernel of the PAC layers. See pac_common.h for the definition.
//
// Work is split by output rows. For one row, output columns are grouped so that every column
// of a group uses the same taps (PacConv2d: one group; PacConvTranspose2d: one group per column
// phase (o + pad) mod stride, so inserted zeros are never multiplied). For a block of columns
// of a group the kernel
//   1. computes K for every tap and column (and Z),
//   2. writes the products K * x into a (taps * Cin, columns) buffer that stays in cache,
//   3. multiplies it with the group's packed filter (Cout, taps * Cin) in one register-tiled
//      matrix product, and
//   4. normalises, adds the bias and scatters the columns to the output.
// No buffer of size C * kh * kw * H * W is ever built.
#include "pac_cpu.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <algorithm>
#include <vector>

namespace pacup_ort {
namespace {

constexpr int64_t kBlockCols = 64;  // columns per block (multiple of 32)

// acc[co][m] = sum_j wt[j][co] * cols[j][m] for co < cop (multiple of 8) and m < mbp
// (multiple of 32): the register-tiled product at the heart of the kernel. One version per
// instruction set, chosen once at run time: AVX-512 (8 x 32 tile in 16 zmm accumulators),
// AVX2 + FMA (4 x 16 tile: 8 ymm accumulators, no spills within 16 registers), and plain C++.
void gemm_generic(const float* wt, int64_t kdim, int64_t cop, const float* cols, int64_t mbp, float* acc) {
  for (int64_t i = 0; i < cop * mbp; ++i) acc[i] = 0.f;
  for (int64_t j = 0; j < kdim; ++j)
    for (int64_t co = 0; co < cop; ++co) {
      const float wv = wt[j * cop + co];
      const float* c = cols + j * mbp;
      float* a = acc + co * mbp;
      for (int64_t m = 0; m < mbp; ++m) a[m] += wv * c[m];
    }
}

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define PACUP_X86 1
// Vector types, unaligned loads/stores through memcpy (compiled for the target of the
// function they are expanded in).
typedef float v8 __attribute__((vector_size(32)));
typedef float v16 __attribute__((vector_size(64)));
#define PACUP_LOAD(dst, p) memcpy(&(dst), (p), sizeof(dst))
#define PACUP_STORE(p, v) memcpy((p), &(v), sizeof(v))

template <typename V, int CO, int NV>
__attribute__((always_inline)) inline void gemm_tiles(const float* wt, int64_t kdim, int64_t cop, const float* cols,
                                                      int64_t mbp, float* acc) {
  constexpr int L = sizeof(V) / sizeof(float);
  for (int64_t co0 = 0; co0 < cop; co0 += CO) {
    for (int64_t m0 = 0; m0 < mbp; m0 += L * NV) {
      V a[CO][NV];
      for (int r = 0; r < CO; ++r)
        for (int v = 0; v < NV; ++v) a[r][v] = V{};
      const float* c = cols + m0;
      const float* w = wt + co0;
      for (int64_t j = 0; j < kdim; ++j, c += mbp, w += cop) {
        V cv[NV];
        for (int v = 0; v < NV; ++v) PACUP_LOAD(cv[v], c + v * L);
        for (int r = 0; r < CO; ++r) {
          const V wr = w[r] - V{};  // splat (x - 0 folds away exactly, unlike 0 + x)
          for (int v = 0; v < NV; ++v) a[r][v] += wr * cv[v];
        }
      }
      for (int r = 0; r < CO; ++r)
        for (int v = 0; v < NV; ++v) PACUP_STORE(acc + (co0 + r) * mbp + m0 + v * L, a[r][v]);
    }
  }
}

__attribute__((target("avx2,fma"))) void gemm_avx2(const float* wt, int64_t kdim, int64_t cop, const float* cols,
                                                   int64_t mbp, float* acc) {
  gemm_tiles<v8, 4, 2>(wt, kdim, cop, cols, mbp, acc);
}

__attribute__((target("avx512f"))) void gemm_avx512(const float* wt, int64_t kdim, int64_t cop, const float* cols,
                                                    int64_t mbp, float* acc) {
  gemm_tiles<v16, 8, 2>(wt, kdim, cop, cols, mbp, acc);
}
#endif

using GemmFn = void (*)(const float*, int64_t, int64_t, const float*, int64_t, float*);

GemmFn pick_gemm() {
#ifdef PACUP_X86
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) return gemm_avx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return gemm_avx2;
#endif
  return gemm_generic;
}

const GemmFn gemm_block = pick_gemm();

struct AlignedBuffer {
  float* p = nullptr;
  explicit AlignedBuffer(size_t n) {
    size_t bytes = ((n * sizeof(float) + 63) / 64) * 64;
    p = static_cast<float*>(aligned_alloc(64, bytes ? bytes : 64));
  }
  ~AlignedBuffer() { free(p); }
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
};

// An index that is affine in the column number m over a range of m and invalid elsewhere:
// value(m) = start + step * m for lo <= m < hi. Within one column group every tap's input,
// guide and centre columns have this form (contiguous or strided), so the inner loops are
// plain strided loops with no per-element index or branch.
struct Affine {
  int64_t start = 0, step = 1, lo = 0, hi = 0;
  int64_t at(int64_t m) const { return start + step * m; }
};

// Fits an Affine to per-column values (-1 = invalid); false if they are not of that form.
bool fit_affine(const std::vector<int64_t>& v, Affine& a) {
  const int64_t n = static_cast<int64_t>(v.size());
  a = Affine();
  int64_t lo = 0;
  while (lo < n && v[lo] < 0) ++lo;
  int64_t hi = lo;
  while (hi < n && v[hi] >= 0) ++hi;
  for (int64_t m = hi; m < n; ++m)
    if (v[m] >= 0) return false;
  if (lo == hi) return true;  // empty range
  a.lo = lo;
  a.hi = hi;
  a.step = (hi - lo >= 2) ? v[lo + 1] - v[lo] : 1;
  a.start = v[lo] - a.step * lo;
  for (int64_t m = lo; m < hi; ++m)
    if (v[m] != a.at(m)) return false;
  return true;
}

// Taps and column ranges of one group of output columns.
struct ColumnGroup {
  std::vector<int> taps;                   // tx
  int64_t first = 0, step = 1, count = 0;  // output columns first + m * step
  std::vector<Affine> q;                   // per tap: input column (outside: not a sample)
  std::vector<Affine> g;                   // per tap: guide column (outside: zero guide), within q's range
  Affine c;                                // centre column (outside: zero)
};

struct Plan {
  const PacArgs* a = nullptr;
  std::vector<std::vector<int>> row_taps;  // per row phase: ty
  std::vector<ColumnGroup> groups;         // per column phase
  int64_t cop = 0;                         // cout padded to a multiple of 8
  // packed filters per (row phase, column group): [(ity * ntx + itx) * cin + ci][cop]
  std::vector<std::vector<float>> packed;
  int64_t rows_per_task = 1, total_rows = 0;
  int max_taps = 1;
};

// Taps of one dimension for output phase r (transposed) or all taps (conv).
std::vector<int> phase_taps(const PacConfig& cfg, bool rows, int64_t r) {
  const int k = rows ? cfg.kh : cfg.kw, s = rows ? cfg.sy : cfg.sx, d = rows ? cfg.dy : cfg.dx;
  std::vector<int> taps;
  for (int t = 0; t < k; ++t)
    if (!cfg.transposed || pos_mod(r - static_cast<int64_t>(t) * d, s) == 0) taps.push_back(t);
  return taps;
}

struct Tap1D {
  int64_t q, g;  // input index (-1: not a sample), guide index (-1: outside)
};

// Input sample and guide position of output index o through tap t along one dimension.
Tap1D tap_1d(const PacConfig& cfg, bool rows, int64_t o, int t, int64_t n_in, int64_t n_guide) {
  const int s = rows ? cfg.sy : cfg.sx, p = rows ? cfg.py : cfg.px, d = rows ? cfg.dy : cfg.dx;
  const int k = rows ? cfg.kh : cfg.kw;
  Tap1D r{-1, -1};
  if (!cfg.transposed) {
    const int64_t q = o * s - p + static_cast<int64_t>(t) * d;
    if (q >= 0 && q < n_in) r.q = r.g = q;
    return r;
  }
  const int64_t num = o + p - static_cast<int64_t>(t) * d;
  if (pos_mod(num, s) != 0) return r;
  const int64_t q = floor_div(num, s);
  if (q < 0 || q >= n_in) return r;
  r.q = q;
  const int64_t g = q * s + static_cast<int64_t>(d) * (k / 2) - p;
  r.g = (g >= 0 && g < n_guide) ? g : -1;
  return r;
}

int64_t centre_1d(const PacConfig& cfg, bool rows, int64_t o, int64_t n_guide) {
  if (cfg.transposed) return o;
  const int s = rows ? cfg.sy : cfg.sx, p = rows ? cfg.py : cfg.px, d = rows ? cfg.dy : cfg.dx;
  const int k = rows ? cfg.kh : cfg.kw;
  const int64_t c = o * s - p + static_cast<int64_t>(d) * (k / 2);
  return (c >= 0 && c < n_guide) ? c : -1;
}

// The part [lo, hi) of an Affine range that falls in the block [m0, m0 + mb), block-relative.
inline void block_range(const Affine& a, int64_t m0, int64_t mb, int64_t& lo, int64_t& hi) {
  lo = std::min(std::max(a.lo - m0, int64_t(0)), mb);
  hi = std::min(std::max(a.hi - m0, int64_t(0)), mb);
  if (hi < lo) hi = lo;
}

void run_rows(void* data, size_t task) {
  const Plan& plan = *static_cast<const Plan*>(data);
  const PacArgs& a = *plan.a;
  const PacConfig& cfg = a.cfg;
  const PacShapes& s = a.shp;
  const float* x = static_cast<const float*>(a.x);
  const float* guide = static_cast<const float*>(a.guide);
  const float* centre = static_cast<const float*>(a.centre);
  const float* bias = static_cast<const float*>(a.bias);
  const float* wshared = static_cast<const float*>(a.weight);
  float* out = static_cast<float*>(a.out);
  const int64_t cin = s.cin, cf = s.cf;
  const int64_t cout = s.shared ? s.cin : s.cout;
  const int64_t mt = plan.max_taps;
  const bool gaussian = cfg.kernel == kGaussian;
  const float half_lambda = 0.5f * cfg.lambda;

  AlignedBuffer kbuf(mt * kBlockCols), zbuf(kBlockCols), cvals(cf * kBlockCols), d2(kBlockCols);
  AlignedBuffer cols(s.shared ? 1 : mt * cin * kBlockCols), acc(std::max(plan.cop, cout) * kBlockCols);
  std::vector<Tap1D> ytaps(cfg.kh);

  const int64_t r0 = static_cast<int64_t>(task) * plan.rows_per_task;
  const int64_t r1 = std::min(plan.total_rows, r0 + plan.rows_per_task);
  for (int64_t row = r0; row < r1; ++row) {
    const int64_t b = row / s.ho, oy = row % s.ho;
    const int64_t ry = cfg.transposed ? pos_mod(oy + cfg.py, cfg.sy) : 0;
    const std::vector<int>& tys = plan.row_taps[ry];
    const int64_t nty = static_cast<int64_t>(tys.size());
    for (int64_t i = 0; i < nty; ++i) ytaps[i] = tap_1d(cfg, true, oy, tys[i], s.h, s.gh);
    const int64_t cy = centre_1d(cfg, true, oy, s.gh);
    for (size_t gi = 0; gi < plan.groups.size(); ++gi) {
      const ColumnGroup& grp = plan.groups[gi];
      const int64_t ntx = static_cast<int64_t>(grp.taps.size());
      const int64_t nt = nty * ntx;
      if (grp.count == 0) continue;
      const std::vector<float>& wt = plan.packed[ry * plan.groups.size() + gi];
      for (int64_t m0 = 0; m0 < grp.count; m0 += kBlockCols) {
        const int64_t mb = std::min(kBlockCols, grp.count - m0);
        const int64_t mbp = (mb + 31) / 32 * 32;
        // Centre features of the block (zero outside the image).
        int64_t clo, chi;
        block_range(grp.c, m0, mb, clo, chi);
        for (int64_t f = 0; f < cf; ++f) {
          float* cv = cvals.p + f * kBlockCols;
          std::fill(cv, cv + mb, 0.f);
          if (cy < 0) continue;
          const float* crow = centre + ((b * cf + f) * s.gh + cy) * s.gw + grp.c.at(m0);
          const int64_t st = grp.c.step;
          for (int64_t m = clo; m < chi; ++m) cv[m] = crow[m * st];
        }
        std::fill(zbuf.p, zbuf.p + mbp, 0.f);
        // K per tap (0 where the tap hits no sample), and Z.
        for (int64_t ity = 0; ity < nty; ++ity) {
          const Tap1D ty = ytaps[ity];
          for (int64_t itx = 0; itx < ntx; ++itx) {
            float* kt = kbuf.p + (ity * ntx + itx) * kBlockCols;
            std::fill(kt, kt + mbp, 0.f);
            if (ty.q < 0) continue;
            int64_t qlo, qhi, glo, ghi;
            block_range(grp.q[itx], m0, mb, qlo, qhi);
            const Affine& ga = grp.g[itx];
            block_range(ga, m0, mb, glo, ghi);
            if (ty.g < 0) glo = ghi = qlo;  // the whole row of guide samples is outside
            std::fill(d2.p + qlo, d2.p + qhi, 0.f);
            for (int64_t f = 0; f < cf; ++f) {
              const float* cv = cvals.p + f * kBlockCols;
              float* dd = d2.p;
              // Guide samples outside the image are zero.
              for (int64_t m = qlo; m < glo; ++m) {
                const float diff = cfg.asymmetric ? 0.f : -cv[m];
                dd[m] += diff * diff;
              }
              if (glo < ghi) {
                const float* grow = guide + ((b * cf + f) * s.gh + ty.g) * s.gw + ga.at(m0);
                const int64_t st = ga.step;
                if (cfg.asymmetric) {
                  for (int64_t m = glo; m < ghi; ++m) {
                    float diff = grow[m * st] - cv[m];
                    diff = diff > 0.f ? diff : 0.f;
                    dd[m] += diff * diff;
                  }
                } else {
                  for (int64_t m = glo; m < ghi; ++m) {
                    const float diff = grow[m * st] - cv[m];
                    dd[m] += diff * diff;
                  }
                }
              }
              for (int64_t m = std::max(ghi, qlo); m < qhi; ++m) {
                const float diff = cfg.asymmetric ? 0.f : -cv[m];
                dd[m] += diff * diff;
              }
            }
            if (gaussian) {
              for (int64_t m = qlo; m < qhi; ++m) kt[m] = expf(-0.5f * d2.p[m]);
            } else {
              for (int64_t m = qlo; m < qhi; ++m) kt[m] = cfg.alpha + powf(d2.p[m] + kInverseEps, half_lambda);
            }
            if (cfg.normalize == kKernelNorm) {
              for (int64_t m = qlo; m < qhi; ++m) zbuf.p[m] += kt[m];
            } else if (cfg.normalize == kCountNorm) {
              for (int64_t m = qlo; m < qhi; ++m) zbuf.p[m] += 1.f;
            }
          }
        }
        // Weighted sum over taps and input channels.
        if (s.shared) {
          for (int64_t c = 0; c < cin; ++c) {
            float* ac = acc.p + c * kBlockCols;
            std::fill(ac, ac + mb, 0.f);
            for (int64_t ity = 0; ity < nty; ++ity) {
              const Tap1D ty = ytaps[ity];
              if (ty.q < 0) continue;
              for (int64_t itx = 0; itx < ntx; ++itx) {
                int64_t qlo, qhi;
                const Affine& qa = grp.q[itx];
                block_range(qa, m0, mb, qlo, qhi);
                const float wv = wshared[tys[ity] * cfg.kw + grp.taps[itx]];
                const float* kt = kbuf.p + (ity * ntx + itx) * kBlockCols;
                const float* xrow = x + ((b * cin + c) * s.h + ty.q) * s.w + qa.at(m0);
                const int64_t st = qa.step;
                for (int64_t m = qlo; m < qhi; ++m) ac[m] += wv * kt[m] * xrow[m * st];
              }
            }
          }
        } else {
          for (int64_t ity = 0; ity < nty; ++ity) {
            const Tap1D ty = ytaps[ity];
            for (int64_t itx = 0; itx < ntx; ++itx) {
              const int64_t t = ity * ntx + itx;
              const float* kt = kbuf.p + t * kBlockCols;
              const Affine& qa = grp.q[itx];
              int64_t qlo, qhi;
              block_range(qa, m0, mb, qlo, qhi);
              if (ty.q < 0) qlo = qhi = 0;
              const int64_t st = qa.step;
              for (int64_t ci = 0; ci < cin; ++ci) {
                float* col = cols.p + (t * cin + ci) * mbp;
                std::fill(col, col + qlo, 0.f);
                if (qlo < qhi) {
                  const float* xrow = x + ((b * cin + ci) * s.h + ty.q) * s.w + qa.at(m0);
                  if (st == 1) {
                    for (int64_t m = qlo; m < qhi; ++m) col[m] = kt[m] * xrow[m];
                  } else {
                    for (int64_t m = qlo; m < qhi; ++m) col[m] = kt[m] * xrow[m * st];
                  }
                }
                std::fill(col + std::max(qhi, qlo), col + mbp, 0.f);
              }
            }
          }
          gemm_block(wt.data(), nt * cin, plan.cop, cols.p, mbp, acc.p);
        }
        // Normalise, add the bias, scatter the columns.
        const int64_t astride = s.shared ? kBlockCols : mbp;
        if (cfg.normalize != kNoNorm)
          for (int64_t m = 0; m < mb; ++m) zbuf.p[m] = zbuf.p[m] > 0.f ? 1.f / zbuf.p[m] : 0.f;
        for (int64_t co = 0; co < cout; ++co) {
          const float* ac = acc.p + co * astride;
          float* orow = out + ((b * cout + co) * s.ho + oy) * s.wo + grp.first + m0 * grp.step;
          const float bv = bias ? bias[co] : 0.f;
          const int64_t st = grp.step;
          if (cfg.normalize != kNoNorm) {
            for (int64_t m = 0; m < mb; ++m) orow[m * st] = ac[m] * zbuf.p[m] + bv;
          } else {
            for (int64_t m = 0; m < mb; ++m) orow[m * st] = ac[m] + bv;
          }
        }
      }
    }
  }
}

}  // namespace

std::string pac_cpu_forward(const PacArgs& a, const ParallelRunner& runner) {
  const PacConfig& cfg = a.cfg;
  const PacShapes& s = a.shp;
  if (s.batch == 0 || s.ho == 0 || s.wo == 0) return "";
  Plan plan;
  plan.a = &a;
  const int64_t ry_n = cfg.transposed ? cfg.sy : 1, rx_n = cfg.transposed ? cfg.sx : 1;
  for (int64_t r = 0; r < ry_n; ++r) plan.row_taps.push_back(phase_taps(cfg, true, r));
  for (int64_t r = 0; r < rx_n; ++r) {
    ColumnGroup grp;
    grp.taps = phase_taps(cfg, false, r);
    if (cfg.transposed) {
      grp.first = pos_mod(r - cfg.px, cfg.sx);
      grp.step = cfg.sx;
      grp.count = grp.first < s.wo ? (s.wo - grp.first + cfg.sx - 1) / cfg.sx : 0;
    } else {
      grp.count = s.wo;
    }
    if (grp.taps.empty()) grp.count = 0;  // no tap reaches this phase: handled below
    const int64_t ntx = static_cast<int64_t>(grp.taps.size());
    std::vector<int64_t> cvals(grp.count), qv(grp.count), gv(grp.count);
    for (int64_t m = 0; m < grp.count; ++m) cvals[m] = centre_1d(cfg, false, grp.first + m * grp.step, s.gw);
    if (!fit_affine(cvals, grp.c)) return "pacup: internal error (centre columns)";
    for (int64_t i = 0; i < ntx; ++i) {
      for (int64_t m = 0; m < grp.count; ++m) {
        const Tap1D t = tap_1d(cfg, false, grp.first + m * grp.step, grp.taps[i], s.w, s.gw);
        qv[m] = t.q;
        gv[m] = t.g;
      }
      Affine qa, ga;
      if (!fit_affine(qv, qa) || !fit_affine(gv, ga) || (ga.lo < ga.hi && (ga.lo < qa.lo || ga.hi > qa.hi)))
        return "pacup: internal error (tap columns)";
      grp.q.push_back(qa);
      grp.g.push_back(ga);
    }
    plan.groups.push_back(std::move(grp));
  }
  const int64_t cout = s.shared ? s.cin : s.cout;
  plan.cop = (cout + 7) / 8 * 8;
  const float* w = static_cast<const float*>(a.weight);
  for (int64_t ry = 0; ry < ry_n; ++ry) {
    for (const ColumnGroup& grp : plan.groups) {
      const auto& tys = plan.row_taps[ry];
      const int64_t ntx = static_cast<int64_t>(grp.taps.size());
      const int64_t nt = static_cast<int64_t>(tys.size()) * ntx;
      plan.max_taps = std::max<int>(plan.max_taps, static_cast<int>(nt));
      std::vector<float> packed;
      if (!s.shared) {
        packed.assign(nt * s.cin * plan.cop, 0.f);
        for (int64_t ity = 0; ity < static_cast<int64_t>(tys.size()); ++ity)
          for (int64_t itx = 0; itx < ntx; ++itx)
            for (int64_t ci = 0; ci < s.cin; ++ci)
              for (int64_t co = 0; co < cout; ++co) {
                const int64_t ty = tys[ity], tx = grp.taps[itx];
                const int64_t src = cfg.transposed ? ((ci * cout + co) * cfg.kh + ty) * cfg.kw + tx
                                                   : ((co * s.cin + ci) * cfg.kh + ty) * cfg.kw + tx;
                packed[((ity * ntx + itx) * s.cin + ci) * plan.cop + co] = w[src];
              }
      }
      plan.packed.push_back(std::move(packed));
    }
  }
  // Columns of a phase that no tap reaches (stride and dilation sharing a factor) hold
  // 0 + bias, like the PyTorch implementation.
  float* out = static_cast<float*>(a.out);
  const float* bias = static_cast<const float*>(a.bias);
  for (int64_t r = 0; r < rx_n; ++r) {
    if (!plan.groups[r].taps.empty() || !cfg.transposed) continue;
    const int64_t first = pos_mod(r - cfg.px, cfg.sx);
    for (int64_t b = 0; b < s.batch; ++b)
      for (int64_t co = 0; co < cout; ++co)
        for (int64_t oy = 0; oy < s.ho; ++oy)
          for (int64_t ox = first; ox < s.wo; ox += cfg.sx)
            out[((b * cout + co) * s.ho + oy) * s.wo + ox] = bias ? bias[co] : 0.f;
  }
  plan.total_rows = s.batch * s.ho;
  // About 4 tasks per core on large inputs; each task reuses its buffers over its rows.
  const int64_t tasks = std::min<int64_t>(plan.total_rows, 256);
  plan.rows_per_task = (plan.total_rows + tasks - 1) / tasks;
  const int64_t n_tasks = (plan.total_rows + plan.rows_per_task - 1) / plan.rows_per_task;
  if (runner.run) {
    runner.run(runner.ctx, run_rows, static_cast<size_t>(n_tasks), &plan);
  } else {
    for (int64_t t = 0; t < n_tasks; ++t) run_rows(&plan, static_cast<size_t>(t));
  }
  return "";
}

}  // namespace pacup_ort
