#include "kiln/runtime/engine.h"

#include <unistd.h>

#include "kiln/core/file.h"
#include "kiln/core/str.h"
#include "kiln/runtime/cpu_engine.h"

#ifdef KILN_WITH_CUDA
#include "kiln/runtime/backend/cuda/device.h"
#include "kiln/runtime/cuda_engine.h"
#define KILN_HAVE_CUDA_ENGINE 1
#endif

namespace kiln::runtime {

Result<std::unique_ptr<Engine>> Engine::load(const std::filesystem::path& model_dir, const EngineOptions& options) {
  if (options.device == DeviceKind::kCuda) {
#ifdef KILN_HAVE_CUDA_ENGINE
    return cuda::load_engine(model_dir, options);
#else
    return unimplemented("engine: this kiln was built without the CUDA backend");
#endif
  }
  KILN_ASSIGN_OR_RETURN(std::unique_ptr<CpuEngine> e, CpuEngine::load(model_dir, options));
  return std::unique_ptr<Engine>(std::move(e));
}

Status device_memory_info(DeviceKind device, int device_index, int64_t* free_bytes, int64_t* total_bytes) {
  if (device == DeviceKind::kCuda) {
#ifdef KILN_HAVE_CUDA_ENGINE
    KILN_ASSIGN_OR_RETURN(std::unique_ptr<cuda::CudaDevice> d, cuda::CudaDevice::open(device_index));
    return d->mem_info(free_bytes, total_bytes);
#else
    (void)device_index;
    return unimplemented("engine: this kiln was built without the CUDA backend");
#endif
  }
  KILN_ASSIGN_OR_RETURN(std::string text, read_file("/proc/meminfo"));
  int64_t avail = -1, total = -1;
  for (const std::string& line : split(text, '\n')) {
    int64_t* out = starts_with(line, "MemAvailable:") ? &avail : starts_with(line, "MemTotal:") ? &total : nullptr;
    if (out == nullptr) continue;
    long long kb = 0;
    std::string digits;
    for (char c : line.substr(line.find(':') + 1)) {
      if (c >= '0' && c <= '9') digits += c;
      else if (!digits.empty()) break;
    }
    if (!digits.empty() && parse_bytes(digits, &kb)) *out = static_cast<int64_t>(kb) * 1024;
  }
  if (avail < 0 || total < 0) return unavailable("engine: /proc/meminfo has no MemAvailable or MemTotal line");
  *free_bytes = avail;
  *total_bytes = total;
  return Status::ok();
}

}  // namespace kiln::runtime
