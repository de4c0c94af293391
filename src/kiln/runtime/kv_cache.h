// The paged KV cache of one model: one tensor per layer, laid out
// [num_blocks, 2, block_size, num_kv_heads, head_dim] (index 0 of the second axis is K, 1 is V).
// Token at position p of a sequence lives in block block_ids[p / block_size], slot
// p % block_size; its "slot" number, as ops see it, is block * block_size + p % block_size.
#pragma once

#include <cstdint>
#include <vector>

#include "kiln/core/status.h"
#include "kiln/runtime/buffer.h"

namespace kiln::runtime {

struct KvCacheShape {
  int64_t num_layers = 0;
  int64_t num_blocks = 0;
  int64_t block_size = 16;
  int64_t num_kv_heads = 0;
  int64_t head_dim = 0;

  int64_t bytes_per_block(DType dtype) const;  // all layers
};

class KvCache {
 public:
  // Allocates every layer's tensor, uninitialised: attention reads only slots written before, so
  // a large host cache costs no memory until it is used.
  static Result<KvCache> allocate(const DeviceContext& ctx, const KvCacheShape& shape, DType dtype);

  const KvCacheShape& shape() const { return shape_; }
  const Tensor& layer(int64_t i) const { return layers_[static_cast<size_t>(i)].tensor(); }
  int64_t nbytes() const;

 private:
  KvCacheShape shape_;
  std::vector<Buffer> layers_;
};

}  // namespace kiln::runtime
