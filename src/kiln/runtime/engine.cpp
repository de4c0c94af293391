#include "kiln/runtime/engine.h"

#include "kiln/runtime/cpu_engine.h"

#if defined(KILN_WITH_CUDA) && __has_include("kiln/runtime/backend/cuda/engine_cuda.h")
#include "kiln/runtime/backend/cuda/engine_cuda.h"
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

}  // namespace kiln::runtime
