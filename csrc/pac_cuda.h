// Host entry points of the CUDA kernels (pac_cuda.cu). Only declared when the library is
// built with CUDA (PACUP_WITH_CUDA); the ONNX Runtime glue passes ORT's compute stream and a
// scratch buffer from the kernel context's allocator, so no CUDA memory is allocated here
// and nothing synchronises.
#pragma once

#include <stddef.h>

#include "pac_common.h"

extern "C" {
// Bytes of scratch memory pacup_cuda_forward needs for this call.
size_t pacup_cuda_scratch_bytes(const pacup_ort::PacArgs* args);
// Enqueues the layer on `stream` (a cudaStream_t). half != 0: tensors are float16. Returns
// null, or a static error message.
const char* pacup_cuda_forward(const pacup_ort::PacArgs* args, int half, void* stream, void* scratch);
}
