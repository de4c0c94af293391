#include "kiln/runtime/device.h"

#include "kiln/core/str.h"

#if defined(KILN_WITH_CUDA) && __has_include("kiln/runtime/backend/cuda/device.h")
#include "kiln/runtime/backend/cuda/device.h"
#define KILN_DEVICE_HAS_CUDA 1
#endif

namespace kiln::runtime {

std::string device_string(Device d) {
  return d.kind == DeviceKind::kCpu ? std::string("cpu") : str_cat("cuda:", d.index);
}

int cuda_device_count() {
#ifdef KILN_DEVICE_HAS_CUDA
  return cuda::device_count();
#else
  return 0;
#endif
}

}  // namespace kiln::runtime
