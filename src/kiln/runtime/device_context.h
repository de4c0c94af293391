// What every op needs to run on its device: the device, its compute threads or stream, scratch.
#pragma once

#include "kiln/runtime/device.h"
#include "kiln/runtime/tensor.h"
#include "kiln/runtime/weight_dtype.h"

namespace kiln {
class ThreadPool;
}

namespace kiln::runtime {

// Owned by the engine (one per engine thread); ops only borrow it. Ops enqueue work and never
// synchronise: on CUDA everything goes on `stream`, so a step can be captured as a CUDA graph.
struct DeviceContext {
  Device device;
  ThreadPool* pool = nullptr;  // CPU: threads for data-parallel kernels (null = calling thread only)
  void* stream = nullptr;      // CUDA: the cudaStream_t every op of this context runs on
  void* blas = nullptr;        // CUDA: the cublasLt handle
  // Scratch memory an op may use for the duration of one call (U8 [bytes]); may be absent.
  Tensor workspace;
  // CPU: how ops::load_linear_weight stores linear weights (never kAuto: the engine resolves it).
  WeightDType weight_dtype = WeightDType::kF32;
};

}  // namespace kiln::runtime
