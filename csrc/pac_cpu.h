// CPU kernel of the PAC layers (float32), parallel through a caller-supplied "parallel for"
// (ONNX Runtime's intra-op thread pool in the custom op; a plain loop in tests).
#pragma once

#include <stddef.h>

#include <string>

#include "pac_common.h"

namespace pacup_ort {

struct ParallelRunner {
  // Calls fn(data, i) for every i in [0, total), possibly concurrently.
  void (*run)(void* ctx, void (*fn)(void*, size_t), size_t total, void* data) = nullptr;
  void* ctx = nullptr;
};

// Computes the layer described by `a` on host float buffers. Returns "" or an error message.
std::string pac_cpu_forward(const PacArgs& a, const ParallelRunner& runner);

}  // namespace pacup_ort
