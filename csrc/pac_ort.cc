// ONNX Runtime custom-op library: registers pacup::PacConv2d and pacup::PacConvTranspose2d.
//
// Written against the ONNX Runtime C API only (declared in ort_api.h; the library does not
// link to libonnxruntime). Load it with SessionOptions.register_custom_ops_library(path);
// ONNX Runtime then calls RegisterCustomOps below. The CPU kernel is always registered (float
// and float16, running on ORT's intra-op thread pool); the CUDA kernel when the library was
// built with CUDA (PACUP_WITH_CUDA).
//
// Node interface (domain "pacup", opset 1):
//   inputs  X (B, Cin, H, W), Guide (B, Cf, Hg, Wg), W, [B (Cout)], [Centre (like Guide)]
//   output  Y (B, Cout, Ho, Wo)
//   attributes kernel_shape, strides, pads (2 or 4 symmetric values), dilations,
//     output_padding (transposed), kernel_type ("gaussian" | "inverse"), inv_alpha,
//     inv_lambda, asymmetric (0/1), normalize (0 none, 1 sample count, 2 sum of K)
// W is (Cout, Cin, kh, kw) for PacConv2d, (Cin, Cout, kh, kw) for PacConvTranspose2d, or a
// shared (1, 1, kh, kw) filter applied to every channel.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <atomic>
#include <string>
#include <vector>

#include "ort_api.h"
#include "pac_common.h"
#include "pac_cpu.h"
#ifdef PACUP_WITH_CUDA
#include "pac_cuda.h"
#endif

#if defined(_WIN32)
#define PACUP_EXPORT __declspec(dllexport)
#else
#define PACUP_EXPORT __attribute__((visibility("default")))
#endif

namespace pacup_ort {
namespace {

Api g_api;
uint32_t g_api_version = 0;
std::atomic<unsigned long long> g_calls[2];  // [0] CPU computes, [1] CUDA computes

const char* kDomain = "pacup";
const char* kCpuEp = "CPUExecutionProvider";
const char* kCudaEp = "CUDAExecutionProvider";

OrtStatus* make_status(OrtErrorCode code, const std::string& msg) { return g_api.CreateStatus(code, msg.c_str()); }

// Releases a status that only told us an optional attribute is absent.
bool ok(OrtStatus* st) {
  if (st == nullptr) return true;
  g_api.ReleaseStatus(st);
  return false;
}

// ------------------------------------------------------------------ float16 <-> float32

float half_to_float(uint16_t h) {
  const uint32_t sign = (h & 0x8000u) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ffu;
  uint32_t bits;
  if (exp == 0) {
    if (man == 0) {
      bits = sign;
    } else {  // subnormal: normalise
      int e = -1;
      uint32_t m = man;
      do {
        ++e;
        m <<= 1;
      } while ((m & 0x400u) == 0);
      bits = sign | ((127 - 15 - e) << 23) | ((m & 0x3ffu) << 13);
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | (man << 13);
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
  }
  float f;
  memcpy(&f, &bits, 4);
  return f;
}

uint16_t float_to_half(float f) {  // round to nearest even
  uint32_t x;
  memcpy(&x, &f, 4);
  const uint32_t sign = (x >> 16) & 0x8000u;
  const uint32_t absx = x & 0x7fffffffu;
  if (absx >= 0x7f800000u) return static_cast<uint16_t>(sign | 0x7c00u | (absx > 0x7f800000u ? 0x200u : 0));
  if (absx >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // overflow to inf
  if (absx < 0x38800000u) {                                               // subnormal or zero
    if (absx < 0x33000000u) return static_cast<uint16_t>(sign);
    const uint32_t e = absx >> 23, m = (absx & 0x7fffffu) | 0x800000u;
    const uint32_t shift = 126 - e;  // 14 + (112 - e)
    uint32_t r = m >> shift;
    const uint32_t rem = m & ((1u << shift) - 1), halfway = 1u << (shift - 1);
    if (rem > halfway || (rem == halfway && (r & 1u))) ++r;
    return static_cast<uint16_t>(sign | r);
  }
  uint32_t r = absx - 0x38000000u;  // rebias exponent
  const uint32_t rem = r & 0x1fffu;
  r >>= 13;
  if (rem > 0x1000u || (rem == 0x1000u && (r & 1u))) ++r;
  return static_cast<uint16_t>(sign | r);
}

// ------------------------------------------------------------------ the kernel object

struct OpInfo {
  OrtCustomOp base;  // must stay the first member: ORT hands us &base
  const char* name;
  const char* ep;
  ONNXTensorElementDataType type;
  int transposed;
};

struct Kernel {
  PacConfig cfg;
  bool cuda = false;
  bool half = false;
  bool kernel_shape_given = false;
};

OrtStatus* read_ints(const OrtKernelInfo* info, const char* name, std::vector<int64_t>& out) {
  int64_t buf[8];
  size_t n = 8;
  if (!ok(g_api.KernelInfoGetAttributeArray_int64(info, name, buf, &n))) {
    out.clear();
    return nullptr;
  }
  out.assign(buf, buf + n);
  return nullptr;
}

OrtStatus* pair_attr(const OrtKernelInfo* info, const char* name, int32_t& a, int32_t& b, bool allow4) {
  std::vector<int64_t> v;
  read_ints(info, name, v);
  if (v.empty()) return nullptr;  // default kept
  if (v.size() == 2) {
    a = static_cast<int32_t>(v[0]);
    b = static_cast<int32_t>(v[1]);
  } else if (allow4 && v.size() == 4 && v[0] == v[2] && v[1] == v[3]) {
    a = static_cast<int32_t>(v[0]);
    b = static_cast<int32_t>(v[1]);
  } else {
    return make_status(ORT_INVALID_ARGUMENT, std::string("pacup: attribute '") + name +
                                                 "' must hold 2 values (pads: 2, or 4 symmetric ones)");
  }
  return nullptr;
}

OrtStatus* create_kernel(const OrtCustomOp* op, const OrtApi*, const OrtKernelInfo* info, void** out) {
  const OpInfo* oi = reinterpret_cast<const OpInfo*>(op);
  Kernel* k = new Kernel();
  PacConfig& c = k->cfg;
  c.transposed = oi->transposed;
  k->cuda = oi->ep == kCudaEp;
  k->half = oi->type == ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16;
  OrtStatus* st = nullptr;
  std::vector<int64_t> ks;
  read_ints(info, "kernel_shape", ks);
  if (ks.size() == 2) {
    c.kh = static_cast<int32_t>(ks[0]);
    c.kw = static_cast<int32_t>(ks[1]);
    k->kernel_shape_given = true;
  } else if (!ks.empty()) {
    st = make_status(ORT_INVALID_ARGUMENT, "pacup: kernel_shape must hold 2 values");
  }
  if (!st) st = pair_attr(info, "strides", c.sy, c.sx, false);
  if (!st) st = pair_attr(info, "pads", c.py, c.px, true);
  if (!st) st = pair_attr(info, "dilations", c.dy, c.dx, false);
  if (!st && c.transposed) st = pair_attr(info, "output_padding", c.opy, c.opx, false);
  if (!st) {
    size_t n = 0;
    std::string kt = "gaussian";
    if (ok(g_api.KernelInfoGetAttribute_string(info, "kernel_type", nullptr, &n)) && n > 0) {
      std::vector<char> buf(n + 1, 0);
      if (ok(g_api.KernelInfoGetAttribute_string(info, "kernel_type", buf.data(), &n))) kt = buf.data();
    }
    if (kt == "gaussian") c.kernel = kGaussian;
    else if (kt == "inverse") c.kernel = kInverse;
    else st = make_status(ORT_INVALID_ARGUMENT, "pacup: kernel_type must be 'gaussian' or 'inverse', got '" + kt + "'");
  }
  if (!st) {
    float f;
    if (ok(g_api.KernelInfoGetAttribute_float(info, "inv_alpha", &f))) c.alpha = f;
    if (ok(g_api.KernelInfoGetAttribute_float(info, "inv_lambda", &f))) c.lambda = f;
    int64_t i;
    if (ok(g_api.KernelInfoGetAttribute_int64(info, "asymmetric", &i))) c.asymmetric = i != 0;
    if (ok(g_api.KernelInfoGetAttribute_int64(info, "normalize", &i))) c.normalize = static_cast<int32_t>(i);
    if (c.normalize < 0 || c.normalize > 2)
      st = make_status(ORT_INVALID_ARGUMENT, "pacup: normalize must be 0 (none), 1 (sample count) or 2 (sum of K)");
  }
  if (!st) {
    const bool bad = c.kh < 1 || c.kw < 1 || c.kh % 2 == 0 || c.kw % 2 == 0 || c.sy < 1 || c.sx < 1 ||
                     c.dy < 1 || c.dx < 1 || c.py < 0 || c.px < 0 || c.opy < 0 || c.opx < 0;
    if (bad)
      st = make_status(ORT_INVALID_ARGUMENT,
                       "pacup: kernel sizes must be odd and positive, strides and dilations positive, "
                       "pads and output_padding non-negative");
  }
  if (st) {
    delete k;
    return st;
  }
  *out = k;
  return nullptr;
}

struct TensorView {
  const OrtValue* value = nullptr;
  std::vector<int64_t> dims;
  ONNXTensorElementDataType type = ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED;
  const void* data = nullptr;
};

OrtStatus* view_input(OrtKernelContext* ctx, size_t count, size_t index, TensorView& t) {
  t = TensorView();
  if (index >= count) return nullptr;
  OrtStatus* st = g_api.KernelContext_GetInput(ctx, index, &t.value);
  if (st || t.value == nullptr) return st;
  OrtTensorTypeAndShapeInfo* info = nullptr;
  if ((st = g_api.GetTensorTypeAndShape(t.value, &info))) return st;
  size_t n = 0;
  st = g_api.GetDimensionsCount(info, &n);
  if (!st) {
    t.dims.resize(n);
    st = g_api.GetDimensions(info, t.dims.data(), n);
  }
  if (!st) st = g_api.GetTensorElementType(info, &t.type);
  g_api.ReleaseTensorTypeAndShapeInfo(info);
  if (st) return st;
  void* p = nullptr;
  if ((st = g_api.GetTensorMutableData(const_cast<OrtValue*>(t.value), &p))) return st;
  t.data = p;
  return nullptr;
}

std::string dims_str(const std::vector<int64_t>& d) {
  std::string s = "(";
  for (size_t i = 0; i < d.size(); ++i) s += (i ? ", " : "") + std::to_string(d[i]);
  return s + ")";
}

// Validates the inputs and fills the shapes of the call (output size included).
std::string check_shapes(const Kernel& k, const TensorView& x, const TensorView& g, const TensorView& w,
                         const TensorView& b, const TensorView& c, PacConfig& cfg, PacShapes& s) {
  const char* layer = cfg.transposed ? "PacConvTranspose2d" : "PacConv2d";
  const std::string L = std::string("pacup::") + layer + ": ";
  if (x.dims.size() != 4) return L + "X must be 4-D (B, C, H, W), got " + dims_str(x.dims);
  if (g.value == nullptr || g.dims.size() != 4) return L + "Guide must be 4-D (B, C, H, W)";
  if (w.value == nullptr || w.dims.size() != 4) return L + "W must be 4-D";
  s.batch = x.dims[0];
  s.cin = x.dims[1];
  s.h = x.dims[2];
  s.w = x.dims[3];
  s.cf = g.dims[1];
  s.gh = g.dims[2];
  s.gw = g.dims[3];
  if (g.dims[0] != s.batch) return L + "Guide batch " + std::to_string(g.dims[0]) + " != X batch " + std::to_string(s.batch);
  if (k.kernel_shape_given && (w.dims[2] != cfg.kh || w.dims[3] != cfg.kw))
    return L + "W " + dims_str(w.dims) + " does not match kernel_shape";
  cfg.kh = static_cast<int32_t>(w.dims[2]);
  cfg.kw = static_cast<int32_t>(w.dims[3]);
  if (cfg.kh % 2 == 0 || cfg.kw % 2 == 0) return L + "kernel sizes must be odd";
  s.shared = (w.dims[0] == 1 && w.dims[1] == 1) ? 1 : 0;
  if (s.shared) {
    s.cout = s.cin;
  } else if (cfg.transposed) {
    if (w.dims[0] != s.cin) return L + "W " + dims_str(w.dims) + " (layout in, out, kh, kw) does not match X channels " + std::to_string(s.cin);
    s.cout = w.dims[1];
  } else {
    if (w.dims[1] != s.cin) return L + "W " + dims_str(w.dims) + " (layout out, in, kh, kw) does not match X channels " + std::to_string(s.cin);
    s.cout = w.dims[0];
  }
  if (cfg.transposed) {
    s.ho = conv_transpose_out_size(s.h, cfg.kh, cfg.sy, cfg.py, cfg.opy, cfg.dy);
    s.wo = conv_transpose_out_size(s.w, cfg.kw, cfg.sx, cfg.px, cfg.opx, cfg.dx);
    if (s.gh != s.ho || s.gw != s.wo)
      return L + "Guide must have the output size (" + std::to_string(s.ho) + ", " + std::to_string(s.wo) + "), got " + dims_str(g.dims);
  } else {
    s.ho = conv_out_size(s.h, cfg.kh, cfg.sy, cfg.py, cfg.dy);
    s.wo = conv_out_size(s.w, cfg.kw, cfg.sx, cfg.px, cfg.dx);
    if (s.gh != s.h || s.gw != s.w) return L + "Guide must have the size of X, got " + dims_str(g.dims);
  }
  if (s.ho < 1 || s.wo < 1) return L + "input " + dims_str(x.dims) + " gives an empty output";
  if (b.value && (b.dims.size() != 1 || b.dims[0] != s.cout))
    return L + "B must have shape (" + std::to_string(s.cout) + "), got " + dims_str(b.dims);
  if (c.value && c.dims != g.dims) return L + "Centre must have the shape of Guide " + dims_str(g.dims);
  for (const TensorView* t : {&x, &g, &w, &b, &c})
    if (t->value && t->type != x.type) return L + "all inputs must have the same element type";
  return "";
}

void ort_parallel_for(void* ctx, void (*fn)(void*, size_t), size_t total, void* data) {
  OrtStatus* st = g_api.KernelContext_ParallelFor(static_cast<const OrtKernelContext*>(ctx), fn, total, 0, data);
  if (st) {  // no thread pool available: run here
    g_api.ReleaseStatus(st);
    for (size_t i = 0; i < total; ++i) fn(data, i);
  }
}

std::vector<float> to_float(const void* p, int64_t n) {
  std::vector<float> v(static_cast<size_t>(n));
  const uint16_t* h = static_cast<const uint16_t*>(p);
  for (int64_t i = 0; i < n; ++i) v[i] = half_to_float(h[i]);
  return v;
}

int64_t numel(const std::vector<int64_t>& d) {
  int64_t n = 1;
  for (int64_t v : d) n *= v;
  return n;
}

OrtStatus* compute(void* op_kernel, OrtKernelContext* ctx) {
  const Kernel& k = *static_cast<const Kernel*>(op_kernel);
  size_t count = 0;
  OrtStatus* st = g_api.KernelContext_GetInputCount(ctx, &count);
  if (st) return st;
  TensorView x, g, w, b, c;
  if ((st = view_input(ctx, count, 0, x)) || (st = view_input(ctx, count, 1, g)) || (st = view_input(ctx, count, 2, w)) ||
      (st = view_input(ctx, count, 3, b)) || (st = view_input(ctx, count, 4, c)))
    return st;
  PacArgs a;
  a.cfg = k.cfg;
  std::string err = check_shapes(k, x, g, w, b, c, a.cfg, a.shp);
  if (!err.empty()) return make_status(ORT_INVALID_ARGUMENT, err);
  const int64_t cout = a.shp.cout;
  const int64_t odims[4] = {a.shp.batch, cout, a.shp.ho, a.shp.wo};
  OrtValue* y = nullptr;
  if ((st = g_api.KernelContext_GetOutput(ctx, 0, odims, 4, &y))) return st;
  void* ydata = nullptr;
  if ((st = g_api.GetTensorMutableData(y, &ydata))) return st;
  a.x = x.data;
  a.guide = g.data;
  a.centre = c.value ? c.data : g.data;
  a.weight = w.data;
  a.bias = b.value ? b.data : nullptr;
  a.out = ydata;

  if (k.cuda) {
#ifdef PACUP_WITH_CUDA
    void* stream = nullptr;
    if ((st = g_api.KernelContext_GetGPUComputeStream(ctx, &stream))) return st;
    const OrtMemoryInfo* mem = nullptr;
    if ((st = g_api.GetTensorMemoryInfo(x.value, &mem))) return st;
    const size_t bytes = pacup_cuda_scratch_bytes(&a);
    OrtAllocator* alloc = nullptr;
    void* scratch = nullptr;
    if (bytes) {
      if ((st = g_api.KernelContext_GetAllocator(ctx, mem, &alloc))) return st;
      scratch = alloc->Alloc(alloc, bytes);
      if (!scratch) {
        g_api.ReleaseAllocator(alloc);
        return make_status(ORT_FAIL, "pacup: could not allocate CUDA scratch memory");
      }
    }
    const char* cerr = pacup_cuda_forward(&a, k.half ? 1 : 0, stream, scratch);
    // The scratch block goes back to ORT's allocator right away; the allocator hands it
    // out again only to work ordered after ours on the same compute stream.
    if (alloc) {
      alloc->Free(alloc, scratch);
      g_api.ReleaseAllocator(alloc);
    }
    if (cerr) return make_status(ORT_FAIL, std::string("pacup CUDA kernel: ") + cerr);
    g_calls[1].fetch_add(1);
    return nullptr;
#else
    return make_status(ORT_FAIL, "pacup: library built without CUDA");
#endif
  }

  ParallelRunner runner;
  runner.run = ort_parallel_for;
  runner.ctx = ctx;
  if (!k.half) {
    err = pac_cpu_forward(a, runner);
  } else {
    // float16 on the CPU: compute in float32 and round the result once.
    std::vector<float> xf = to_float(x.data, numel(x.dims)), gf = to_float(g.data, numel(g.dims));
    std::vector<float> wf = to_float(w.data, numel(w.dims));
    std::vector<float> bf = b.value ? to_float(b.data, numel(b.dims)) : std::vector<float>();
    std::vector<float> cf = c.value ? to_float(c.data, numel(c.dims)) : std::vector<float>();
    std::vector<float> yf(static_cast<size_t>(numel({odims[0], odims[1], odims[2], odims[3]})));
    a.x = xf.data();
    a.guide = gf.data();
    a.centre = c.value ? cf.data() : gf.data();
    a.weight = wf.data();
    a.bias = b.value ? bf.data() : nullptr;
    a.out = yf.data();
    err = pac_cpu_forward(a, runner);
    uint16_t* yh = static_cast<uint16_t*>(ydata);
    for (size_t i = 0; i < yf.size(); ++i) yh[i] = float_to_half(yf[i]);
  }
  if (!err.empty()) return make_status(ORT_FAIL, err);
  g_calls[0].fetch_add(1);
  return nullptr;
}

// ------------------------------------------------------------------ OrtCustomOp callbacks

const char* op_name(const OrtCustomOp* op) { return reinterpret_cast<const OpInfo*>(op)->name; }
const char* op_ep(const OrtCustomOp* op) { return reinterpret_cast<const OpInfo*>(op)->ep; }
ONNXTensorElementDataType op_type(const OrtCustomOp* op, size_t) { return reinterpret_cast<const OpInfo*>(op)->type; }
size_t op_input_count(const OrtCustomOp*) { return 5; }
size_t op_output_count(const OrtCustomOp*) { return 1; }
OrtCustomOpInputOutputCharacteristic op_input_char(const OrtCustomOp*, size_t i) {
  return i >= 3 ? INPUT_OUTPUT_OPTIONAL : INPUT_OUTPUT_REQUIRED;
}
OrtCustomOpInputOutputCharacteristic op_output_char(const OrtCustomOp*, size_t) { return INPUT_OUTPUT_REQUIRED; }
OrtMemType op_input_mem(const OrtCustomOp*, size_t) { return OrtMemTypeDefault; }
int op_one(const OrtCustomOp*) { return 1; }
int op_zero(const OrtCustomOp*) { return 0; }
size_t op_no_inplace(int** in, int** out) {
  *in = nullptr;
  *out = nullptr;
  return 0;
}
void op_release_inplace(int*, int*) {}

void* op_create_v1(const OrtCustomOp* op, const OrtApi* api, const OrtKernelInfo* info) {
  void* k = nullptr;
  OrtStatus* st = create_kernel(op, api, info, &k);
  if (st) {
    fprintf(stderr, "pacup: %s\n", g_api.GetErrorMessage(st));
    g_api.ReleaseStatus(st);
    return nullptr;
  }
  return k;
}
void op_compute_v1(void* k, OrtKernelContext* ctx) {
  OrtStatus* st = compute(k, ctx);
  if (st) {
    fprintf(stderr, "pacup: %s\n", g_api.GetErrorMessage(st));
    g_api.ReleaseStatus(st);
  }
}
void op_destroy(void* k) { delete static_cast<Kernel*>(k); }

OpInfo make_op(const char* name, const char* ep, ONNXTensorElementDataType type, int transposed) {
  OpInfo o;
  memset(&o, 0, sizeof(o));
  o.base.version = kMinApiVersion;  // every field of ort_api.h's OrtCustomOp is filled
  o.base.CreateKernel = op_create_v1;
  o.base.GetName = op_name;
  o.base.GetExecutionProviderType = op_ep;
  o.base.GetInputType = op_type;
  o.base.GetInputTypeCount = op_input_count;
  o.base.GetOutputType = op_type;
  o.base.GetOutputTypeCount = op_output_count;
  o.base.KernelCompute = op_compute_v1;
  o.base.KernelDestroy = op_destroy;
  o.base.GetInputCharacteristic = op_input_char;
  o.base.GetOutputCharacteristic = op_output_char;
  o.base.GetInputMemoryType = op_input_mem;
  o.base.GetVariadicInputMinArity = op_one;
  o.base.GetVariadicInputHomogeneity = op_zero;
  o.base.GetVariadicOutputMinArity = op_one;
  o.base.GetVariadicOutputHomogeneity = op_zero;
  o.base.CreateKernelV2 = create_kernel;
  o.base.KernelComputeV2 = compute;
  o.base.InferOutputShapeFn = nullptr;  // ONNX Runtime infers the output type
  o.base.GetStartVersion = op_one;
  o.base.GetEndVersion = nullptr;
  o.base.GetMayInplace = op_no_inplace;
  o.base.ReleaseMayInplace = op_release_inplace;
  o.base.GetAliasMap = op_no_inplace;
  o.base.ReleaseAliasMap = op_release_inplace;
  o.name = name;
  o.ep = ep;
  o.type = type;
  o.transposed = transposed;
  return o;
}

std::vector<OpInfo>& all_ops() {
  static std::vector<OpInfo> ops = [] {
    std::vector<OpInfo> v;
    const ONNXTensorElementDataType types[2] = {ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT, ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16};
    std::vector<const char*> eps = {kCpuEp};
#ifdef PACUP_WITH_CUDA
    eps.push_back(kCudaEp);
#endif
    for (const char* ep : eps)
      for (ONNXTensorElementDataType t : types) {
        v.push_back(make_op("PacConv2d", ep, t, 0));
        v.push_back(make_op("PacConvTranspose2d", ep, t, 1));
      }
    return v;
  }();
  return ops;
}

// API version: the runtime's own (from its version string) capped at the newest table this
// library knows, then downwards to the oldest it can work with.
const OrtApi* negotiate(const OrtApiBase* base, uint32_t& version) {
  uint32_t start = kMaxKnownApiVersion;
  const char* vs = base->GetVersionString ? base->GetVersionString() : nullptr;
  unsigned major = 0, minor = 0;
  if (vs && sscanf(vs, "%u.%u", &major, &minor) == 2 && major == 1 && minor < start) start = minor;
  for (uint32_t v = start; v >= kMinApiVersion; --v) {
    const OrtApi* api = base->GetApi(v);
    if (api) {
      version = v;
      return api;
    }
  }
  return nullptr;
}

}  // namespace
}  // namespace pacup_ort

extern "C" {

PACUP_EXPORT OrtStatus* RegisterCustomOps(OrtSessionOptions* options, const OrtApiBase* base) {
  using namespace pacup_ort;
  uint32_t version = 0;
  const OrtApi* api = negotiate(base, version);
  if (!api) {
    // API 1 always exists and CreateStatus is its first entry.
    Api v1(base->GetApi(1));
    if (!v1.valid()) return nullptr;
    std::string msg = std::string("pacup custom ops need ONNX Runtime >= 1.17 (C API version ") +
                      std::to_string(kMinApiVersion) + "), this runtime is " +
                      (base->GetVersionString ? base->GetVersionString() : "unknown");
    return v1.CreateStatus(ORT_NOT_IMPLEMENTED, msg.c_str());
  }
  g_api = Api(api);
  g_api_version = version;
  OrtCustomOpDomain* domain = nullptr;
  OrtStatus* st = g_api.CreateCustomOpDomain(kDomain, &domain);
  if (st) return st;
  for (OpInfo& op : all_ops())
    if ((st = g_api.CustomOpDomain_Add(domain, &op.base))) return st;
  // The domain must outlive every session created with these options; it is kept for the
  // life of the process (one small object per registration).
  return g_api.AddCustomOpDomain(options, domain);
}

// Diagnostics read by pacup.onnx through ctypes (same loaded library as ONNX Runtime's).
PACUP_EXPORT unsigned long long pacup_ort_compute_count(int device) {
  return (device == 0 || device == 1) ? pacup_ort::g_calls[device].load() : 0;
}
PACUP_EXPORT unsigned pacup_ort_api_version(void) { return pacup_ort::g_api_version; }
PACUP_EXPORT int pacup_ort_has_cuda(void) {
#ifdef PACUP_WITH_CUDA
  return 1;
#else
  return 0;
#endif
}

}  // extern "C"
