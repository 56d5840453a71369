// Minimal declarations of the ONNX Runtime C API, exactly the parts libpacup_ort uses.
//
// No onnxruntime wheel ships its C headers, so this file declares them from the documented,
// append-only ABI: `OrtApiBase` (two function pointers), the `OrtApi` function table (read by
// index: each entry is one function pointer and entries are only ever appended, so an index
// is valid in every version that has it) and the `OrtCustomOp` struct (versioned fields).
// Indices were counted from the public onnxruntime_c_api.h (API version 30) and agree with
// the byte offsets of independent language bindings; tests against the installed
// onnxruntime exercise every entry listed here.
#pragma once

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct OrtApi OrtApi;  // opaque: accessed through pacup_ort::Api below
typedef struct OrtStatus OrtStatus;
typedef struct OrtSessionOptions OrtSessionOptions;
typedef struct OrtCustomOpDomain OrtCustomOpDomain;
typedef struct OrtKernelInfo OrtKernelInfo;
typedef struct OrtKernelContext OrtKernelContext;
typedef struct OrtValue OrtValue;
typedef struct OrtTensorTypeAndShapeInfo OrtTensorTypeAndShapeInfo;
typedef struct OrtMemoryInfo OrtMemoryInfo;
typedef struct OrtShapeInferContext OrtShapeInferContext;

typedef enum ONNXTensorElementDataType {
  ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED = 0,
  ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT = 1,
  ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16 = 10,
} ONNXTensorElementDataType;

typedef enum OrtErrorCode {
  ORT_OK = 0,
  ORT_FAIL = 1,
  ORT_INVALID_ARGUMENT = 2,
  ORT_RUNTIME_EXCEPTION = 6,
  ORT_NOT_IMPLEMENTED = 9,
} OrtErrorCode;

typedef enum OrtMemType { OrtMemTypeDefault = 0 } OrtMemType;

typedef enum OrtCustomOpInputOutputCharacteristic {
  INPUT_OUTPUT_REQUIRED = 0,
  INPUT_OUTPUT_OPTIONAL = 1,
  INPUT_OUTPUT_VARIADIC = 2,
} OrtCustomOpInputOutputCharacteristic;

// OrtAllocator: version, then Alloc/Free/Info (present since version 1; later versions append).
typedef struct OrtAllocator {
  uint32_t version;
  void* (*Alloc)(struct OrtAllocator* self, size_t size);
  void (*Free)(struct OrtAllocator* self, void* p);
  const OrtMemoryInfo* (*Info)(const struct OrtAllocator* self);
} OrtAllocator;

typedef struct OrtApiBase {
  const OrtApi* (*GetApi)(uint32_t version);
  const char* (*GetVersionString)(void);
} OrtApiBase;

// OrtCustomOp, fields in ABI order. ORT reads a field only when `version` is at least the
// version that introduced it (comments), so filling every field below and setting
// version = 17 is valid from ONNX Runtime 1.17 on. Later fields are filled with harmless
// implementations in case a runtime reads them.
typedef struct OrtCustomOp {
  uint32_t version;
  void* (*CreateKernel)(const struct OrtCustomOp* op, const OrtApi* api, const OrtKernelInfo* info);
  const char* (*GetName)(const struct OrtCustomOp* op);
  const char* (*GetExecutionProviderType)(const struct OrtCustomOp* op);
  ONNXTensorElementDataType (*GetInputType)(const struct OrtCustomOp* op, size_t index);
  size_t (*GetInputTypeCount)(const struct OrtCustomOp* op);
  ONNXTensorElementDataType (*GetOutputType)(const struct OrtCustomOp* op, size_t index);
  size_t (*GetOutputTypeCount)(const struct OrtCustomOp* op);
  void (*KernelCompute)(void* op_kernel, OrtKernelContext* context);
  void (*KernelDestroy)(void* op_kernel);
  // version 8
  OrtCustomOpInputOutputCharacteristic (*GetInputCharacteristic)(const struct OrtCustomOp* op, size_t index);
  OrtCustomOpInputOutputCharacteristic (*GetOutputCharacteristic)(const struct OrtCustomOp* op, size_t index);
  // version 13
  OrtMemType (*GetInputMemoryType)(const struct OrtCustomOp* op, size_t index);
  // version 14
  int (*GetVariadicInputMinArity)(const struct OrtCustomOp* op);
  int (*GetVariadicInputHomogeneity)(const struct OrtCustomOp* op);
  int (*GetVariadicOutputMinArity)(const struct OrtCustomOp* op);
  int (*GetVariadicOutputHomogeneity)(const struct OrtCustomOp* op);
  // version 16
  OrtStatus* (*CreateKernelV2)(const struct OrtCustomOp* op, const OrtApi* api, const OrtKernelInfo* info,
                               void** kernel);
  OrtStatus* (*KernelComputeV2)(void* op_kernel, OrtKernelContext* context);
  // version 17
  OrtStatus* (*InferOutputShapeFn)(const struct OrtCustomOp* op, OrtShapeInferContext* ctx);
  int (*GetStartVersion)(const struct OrtCustomOp* op);
  int (*GetEndVersion)(const struct OrtCustomOp* op);
  // version 18 and later
  size_t (*GetMayInplace)(int** input_index, int** output_index);
  void (*ReleaseMayInplace)(int* input_index, int* output_index);
  size_t (*GetAliasMap)(int** input_index, int** output_index);
  void (*ReleaseAliasMap)(int* input_index, int* output_index);
} OrtCustomOp;

#ifdef __cplusplus
}  // extern "C"

namespace pacup_ort {

// The oldest API version this library needs (KernelContext_ParallelFor arrived in 17) and
// the newest whose table layout it knows; registration asks for the highest available.
constexpr uint32_t kMinApiVersion = 17;
constexpr uint32_t kMaxKnownApiVersion = 30;

// Typed access to OrtApi entries by their index in the function table.
class Api {
 public:
  explicit Api(const OrtApi* api = nullptr) : table_(reinterpret_cast<void* const*>(api)) {}
  bool valid() const { return table_ != nullptr; }

#define PACUP_ORT_ENTRY(INDEX, RET, NAME, PARAMS, ARGS)                            \
  RET NAME PARAMS const {                                                        \
    using Fn = RET(*) PARAMS;                                                    \
    return reinterpret_cast<Fn>(table_[INDEX]) ARGS;                             \
  }

  PACUP_ORT_ENTRY(0, OrtStatus*, CreateStatus, (OrtErrorCode code, const char* msg), (code, msg))
  PACUP_ORT_ENTRY(2, const char*, GetErrorMessage, (const OrtStatus* status), (status))
  PACUP_ORT_ENTRY(26, OrtStatus*, CreateCustomOpDomain, (const char* domain, OrtCustomOpDomain** out), (domain, out))
  PACUP_ORT_ENTRY(27, OrtStatus*, CustomOpDomain_Add, (OrtCustomOpDomain* domain, const OrtCustomOp* op), (domain, op))
  PACUP_ORT_ENTRY(28, OrtStatus*, AddCustomOpDomain, (OrtSessionOptions* options, OrtCustomOpDomain* domain),
                  (options, domain))
  PACUP_ORT_ENTRY(51, OrtStatus*, GetTensorMutableData, (OrtValue* value, void** out), (value, out))
  PACUP_ORT_ENTRY(60, OrtStatus*, GetTensorElementType,
                  (const OrtTensorTypeAndShapeInfo* info, ONNXTensorElementDataType* out), (info, out))
  PACUP_ORT_ENTRY(61, OrtStatus*, GetDimensionsCount, (const OrtTensorTypeAndShapeInfo* info, size_t* out), (info, out))
  PACUP_ORT_ENTRY(62, OrtStatus*, GetDimensions, (const OrtTensorTypeAndShapeInfo* info, int64_t* values, size_t n),
                  (info, values, n))
  PACUP_ORT_ENTRY(65, OrtStatus*, GetTensorTypeAndShape, (const OrtValue* value, OrtTensorTypeAndShapeInfo** out),
                  (value, out))
  PACUP_ORT_ENTRY(85, OrtStatus*, KernelInfoGetAttribute_float, (const OrtKernelInfo* info, const char* name, float* out),
                  (info, name, out))
  PACUP_ORT_ENTRY(86, OrtStatus*, KernelInfoGetAttribute_int64,
                  (const OrtKernelInfo* info, const char* name, int64_t* out), (info, name, out))
  PACUP_ORT_ENTRY(87, OrtStatus*, KernelInfoGetAttribute_string,
                  (const OrtKernelInfo* info, const char* name, char* out, size_t* size), (info, name, out, size))
  PACUP_ORT_ENTRY(88, OrtStatus*, KernelContext_GetInputCount, (const OrtKernelContext* ctx, size_t* out), (ctx, out))
  PACUP_ORT_ENTRY(90, OrtStatus*, KernelContext_GetInput, (const OrtKernelContext* ctx, size_t index, const OrtValue** out),
                  (ctx, index, out))
  PACUP_ORT_ENTRY(91, OrtStatus*, KernelContext_GetOutput,
                  (OrtKernelContext* ctx, size_t index, const int64_t* dims, size_t n, OrtValue** out),
                  (ctx, index, dims, n, out))
  PACUP_ORT_ENTRY(93, void, ReleaseStatus, (OrtStatus* status), (status))
  PACUP_ORT_ENTRY(99, void, ReleaseTensorTypeAndShapeInfo, (OrtTensorTypeAndShapeInfo* info), (info))
  PACUP_ORT_ENTRY(132, void, ReleaseAllocator, (OrtAllocator* allocator), (allocator))
  PACUP_ORT_ENTRY(163, OrtStatus*, KernelInfoGetAttributeArray_int64,
                  (const OrtKernelInfo* info, const char* name, int64_t* out, size_t* size), (info, name, out, size))
  PACUP_ORT_ENTRY(193, OrtStatus*, KernelContext_GetGPUComputeStream, (const OrtKernelContext* ctx, void** out),
                  (ctx, out))
  PACUP_ORT_ENTRY(194, OrtStatus*, GetTensorMemoryInfo, (const OrtValue* value, const OrtMemoryInfo** out), (value, out))
  PACUP_ORT_ENTRY(253, OrtStatus*, KernelContext_GetAllocator,
                  (const OrtKernelContext* ctx, const OrtMemoryInfo* mem_info, OrtAllocator** out), (ctx, mem_info, out))
  PACUP_ORT_ENTRY(274, OrtStatus*, KernelContext_ParallelFor,
                  (const OrtKernelContext* ctx, void (*fn)(void*, size_t), size_t total, size_t num_batch, void* data),
                  (ctx, fn, total, num_batch, data))
#undef PACUP_ORT_ENTRY

 private:
  void* const* table_;
};

}  // namespace pacup_ort
#endif  // __cplusplus
