// Runs a data-parallel loop on the context's thread pool, or inline when it has none.
#pragma once

#include <cstdint>
#include <functional>

#include "kiln/core/thread_pool.h"
#include "kiln/runtime/device_context.h"

namespace kiln::runtime::cpu {

inline void parallel_for(const DeviceContext& ctx, int64_t n, int64_t grain,
                         const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  if (ctx.pool == nullptr) {
    fn(0, n);
    return;
  }
  ctx.pool->parallel_for(n, grain, fn);
}

}  // namespace kiln::runtime::cpu
