#include "kiln/runtime/kv_cache.h"

#include "kiln/core/str.h"

namespace kiln::runtime {

int64_t KvCacheShape::bytes_per_block(DType dtype) const {
  return num_layers * 2 * block_size * num_kv_heads * head_dim * static_cast<int64_t>(dtype_size(dtype));
}

Result<KvCache> KvCache::allocate(const DeviceContext& ctx, const KvCacheShape& shape, DType dtype) {
  if (shape.num_layers <= 0 || shape.num_blocks <= 0 || shape.block_size <= 0 || shape.num_kv_heads <= 0 ||
      shape.head_dim <= 0)
    return invalid_argument(str_cat("kv cache: every dimension must be positive (layers ", shape.num_layers, ", blocks ",
                                    shape.num_blocks, ", block_size ", shape.block_size, ")"));
  KvCache cache;
  cache.shape_ = shape;
  for (int64_t i = 0; i < shape.num_layers; ++i) {
    KILN_ASSIGN_OR_RETURN(Buffer b, Buffer::allocate(ctx.device, dtype,
                                                     {shape.num_blocks, 2, shape.block_size, shape.num_kv_heads, shape.head_dim}));
    cache.layers_.push_back(std::move(b));
  }
  return cache;
}

int64_t KvCache::nbytes() const {
  int64_t n = 0;
  for (const Buffer& b : layers_) n += b.nbytes();
  return n;
}

}  // namespace kiln::runtime
