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

constexpr int64_t kBlockCols = 64;  // columns per block (multiple of 16)

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__)) && !defined(__clang__)
#define PACUP_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define PACUP_CLONES
#endif

#if defined(__GNUC__)
typedef float v8 __attribute__((vector_size(32)));
// Unaligned 8-float load/store (macros, so that they take the target of the function they
// are used in).
#define PACUP_LOAD8(dst, p) memcpy(&(dst), (p), sizeof(v8))
#define PACUP_STORE8(p, v) memcpy((p), &(v), sizeof(v8))

// acc[co][m] = sum_j wt[j][co] * cols[j][m], co < cop (multiple of 8), m < mbp (multiple of 16).
PACUP_CLONES
void gemm_block(const float* wt, int64_t kdim, int64_t cop, const float* cols, int64_t mbp, float* acc) {
  for (int64_t co0 = 0; co0 < cop; co0 += 8) {
    for (int64_t m0 = 0; m0 < mbp; m0 += 16) {
      v8 a0[8], a1[8];
      for (int r = 0; r < 8; ++r) {
        a0[r] = (v8){0, 0, 0, 0, 0, 0, 0, 0};
        a1[r] = a0[r];
      }
      const float* c = cols + m0;
      const float* w = wt + co0;
      for (int64_t j = 0; j < kdim; ++j, c += mbp, w += cop) {
        v8 c0, c1;
        PACUP_LOAD8(c0, c);
        PACUP_LOAD8(c1, c + 8);
        for (int r = 0; r < 8; ++r) {
          const v8 wr = (v8){0, 0, 0, 0, 0, 0, 0, 0} + w[r];
          a0[r] += wr * c0;
          a1[r] += wr * c1;
        }
      }
      for (int r = 0; r < 8; ++r) {
        PACUP_STORE8(acc + (co0 + r) * mbp + m0, a0[r]);
        PACUP_STORE8(acc + (co0 + r) * mbp + m0 + 8, a1[r]);
      }
    }
  }
}
#else
void gemm_block(const float* wt, int64_t kdim, int64_t cop, const float* cols, int64_t mbp, float* acc) {
  for (int64_t i = 0; i < cop * mbp; ++i) acc[i] = 0.f;
  for (int64_t j = 0; j < kdim; ++j)
    for (int64_t co = 0; co < cop; ++co) {
      const float wv = wt[j * cop + co];
      for (int64_t m = 0; m < mbp; ++m) acc[co * mbp + m] += wv * cols[j * mbp + m];
    }
}
#endif

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

// Taps and column indices of one group of output columns.
struct ColumnGroup {
  std::vector<int> taps;          // tx
  int64_t first = 0, step = 1, count = 0;  // output columns first + m * step
  std::vector<int64_t> q;         // [tap][m] input column, -1 if not a sample
  std::vector<int64_t> g;         // [tap][m] guide column, -1 if outside the guide
  std::vector<int64_t> c;         // [m] centre column, -1 if outside
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

inline float adapt(const PacConfig& cfg, float d2) {
  if (cfg.kernel == kGaussian) return expf(-0.5f * d2);
  return cfg.alpha + powf(d2 + kInverseEps, 0.5f * cfg.lambda);
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

  AlignedBuffer kbuf(mt * kBlockCols), zbuf(kBlockCols), cvals(cf * kBlockCols), d2(kBlockCols);
  AlignedBuffer cols(s.shared ? 1 : mt * cin * kBlockCols), acc(std::max(plan.cop, cout) * kBlockCols);
  std::vector<Tap1D> ytaps(cfg.kh);

  const int64_t r0 = static_cast<int64_t>(task) * plan.rows_per_task;
  const int64_t r1 = std::min(plan.total_rows, r0 + plan.rows_per_task);
  for (int64_t row = r0; row < r1; ++row) {
    const int64_t b = row / s.ho, oy = row % s.ho;
    const int64_t ry = cfg.transposed ? pos_mod(oy + cfg.py, cfg.sy) : 0;
    const std::vector<int>& tys = plan.row_taps[ry];
    for (size_t i = 0; i < tys.size(); ++i) ytaps[i] = tap_1d(cfg, true, oy, tys[i], s.h, s.gh);
    const int64_t cy = centre_1d(cfg, true, oy, s.gh);
    for (size_t gi = 0; gi < plan.groups.size(); ++gi) {
      const ColumnGroup& grp = plan.groups[gi];
      const int64_t ntx = static_cast<int64_t>(grp.taps.size());
      const int64_t nt = static_cast<int64_t>(tys.size()) * ntx;
      if (grp.count == 0) continue;
      const std::vector<float>& wt = plan.packed[ry * plan.groups.size() + gi];
      for (int64_t m0 = 0; m0 < grp.count; m0 += kBlockCols) {
        const int64_t mb = std::min(kBlockCols, grp.count - m0);
        const int64_t mbp = (mb + 15) / 16 * 16;
        // Centre features of the block.
        for (int64_t f = 0; f < cf; ++f) {
          float* cv = cvals.p + f * kBlockCols;
          const float* crow = (cy >= 0) ? centre + ((b * cf + f) * s.gh + cy) * s.gw : nullptr;
          for (int64_t m = 0; m < mb; ++m) {
            const int64_t cx = grp.c[m0 + m];
            cv[m] = (crow && cx >= 0) ? crow[cx] : 0.f;
          }
        }
        for (int64_t m = 0; m < mbp; ++m) zbuf.p[m] = 0.f;
        // K per tap, and Z.
        for (int64_t ity = 0; ity < static_cast<int64_t>(tys.size()); ++ity) {
          const Tap1D ty = ytaps[ity];
          for (int64_t itx = 0; itx < ntx; ++itx) {
            float* kt = kbuf.p + (ity * ntx + itx) * kBlockCols;
            const int64_t* qx = grp.q.data() + itx * grp.count + m0;
            const int64_t* gx = grp.g.data() + itx * grp.count + m0;
            if (ty.q < 0) {
              for (int64_t m = 0; m < mbp; ++m) kt[m] = 0.f;
              continue;
            }
            for (int64_t m = 0; m < mb; ++m) d2.p[m] = 0.f;
            for (int64_t f = 0; f < cf; ++f) {
              const float* cv = cvals.p + f * kBlockCols;
              const float* grow = (ty.g >= 0) ? guide + ((b * cf + f) * s.gh + ty.g) * s.gw : nullptr;
              for (int64_t m = 0; m < mb; ++m) {
                const float gv = (grow && gx[m] >= 0) ? grow[gx[m]] : 0.f;
                float diff = gv - cv[m];
                if (cfg.asymmetric) diff = diff > 0.f ? diff : 0.f;
                d2.p[m] += diff * diff;
              }
            }
            for (int64_t m = 0; m < mb; ++m) {
              const bool sample = qx[m] >= 0;
              const float k = sample ? adapt(cfg, d2.p[m]) : 0.f;
              kt[m] = k;
              if (cfg.normalize == kKernelNorm) zbuf.p[m] += k;
              else if (cfg.normalize == kCountNorm) zbuf.p[m] += sample ? 1.f : 0.f;
            }
            for (int64_t m = mb; m < mbp; ++m) kt[m] = 0.f;
          }
        }
        // Weighted sum over taps and input channels.
        if (s.shared) {
          for (int64_t c = 0; c < cin; ++c) {
            float* ac = acc.p + c * kBlockCols;
            for (int64_t m = 0; m < mb; ++m) ac[m] = 0.f;
            for (int64_t ity = 0; ity < static_cast<int64_t>(tys.size()); ++ity) {
              const Tap1D ty = ytaps[ity];
              if (ty.q < 0) continue;
              const float* xrow = x + ((b * cin + c) * s.h + ty.q) * s.w;
              for (int64_t itx = 0; itx < ntx; ++itx) {
                const float wv = wshared[tys[ity] * cfg.kw + grp.taps[itx]];
                const float* kt = kbuf.p + (ity * ntx + itx) * kBlockCols;
                const int64_t* qx = grp.q.data() + itx * grp.count + m0;
                for (int64_t m = 0; m < mb; ++m)
                  if (qx[m] >= 0) ac[m] += wv * kt[m] * xrow[qx[m]];
              }
            }
          }
        } else {
          for (int64_t ity = 0; ity < static_cast<int64_t>(tys.size()); ++ity) {
            const Tap1D ty = ytaps[ity];
            for (int64_t itx = 0; itx < ntx; ++itx) {
              const int64_t t = ity * ntx + itx;
              const float* kt = kbuf.p + t * kBlockCols;
              const int64_t* qx = grp.q.data() + itx * grp.count + m0;
              for (int64_t ci = 0; ci < cin; ++ci) {
                float* col = cols.p + (t * cin + ci) * mbp;
                if (ty.q < 0) {
                  for (int64_t m = 0; m < mbp; ++m) col[m] = 0.f;
                  continue;
                }
                const float* xrow = x + ((b * cin + ci) * s.h + ty.q) * s.w;
                for (int64_t m = 0; m < mb; ++m) col[m] = (qx[m] >= 0) ? kt[m] * xrow[qx[m]] : 0.f;
                for (int64_t m = mb; m < mbp; ++m) col[m] = 0.f;
              }
            }
          }
          gemm_block(wt.data(), nt * cin, plan.cop, cols.p, mbp, acc.p);
        }
        // Normalise, add the bias, scatter the columns.
        const int64_t astride = s.shared ? kBlockCols : mbp;
        for (int64_t co = 0; co < cout; ++co) {
          const float* ac = acc.p + co * astride;
          float* orow = out + ((b * cout + co) * s.ho + oy) * s.wo;
          const float bv = bias ? bias[co] : 0.f;
          for (int64_t m = 0; m < mb; ++m) {
            float v = ac[m];
            if (cfg.normalize != kNoNorm) v = zbuf.p[m] > 0.f ? v / zbuf.p[m] : 0.f;
            orow[grp.first + (m0 + m) * grp.step] = v + bv;
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
    grp.q.resize(ntx * grp.count);
    grp.g.resize(ntx * grp.count);
    grp.c.resize(grp.count);
    for (int64_t m = 0; m < grp.count; ++m) {
      const int64_t ox = grp.first + m * grp.step;
      grp.c[m] = centre_1d(cfg, false, ox, s.gw);
      for (int64_t i = 0; i < ntx; ++i) {
        const Tap1D t = tap_1d(cfg, false, ox, grp.taps[i], s.w, s.gw);
        grp.q[i * grp.count + m] = t.q;
        grp.g[i * grp.count + m] = t.g;
      }
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
