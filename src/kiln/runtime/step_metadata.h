// The CUDA engine's step metadata: int32 regions at fixed offsets of one pinned host buffer and one
// device buffer, so that a captured graph keeps reading the same addresses while every step
// rewrites them. Plain C++: the memory plan sizes these buffers with the same layout.
#pragma once

#include <cstddef>
#include <cstdint>

namespace kiln::runtime {

struct StepMetaLayout {
  static constexpr size_t kAlign = 64;  // int32 elements between regions (256 bytes)

  size_t tokens = 0, positions = 0, slots = 0, query_start = 0, kv_len = 0, block_start = 0, logit_rows = 0,
         block_ids = 0, total = 0;
  int64_t cap_tokens = 0, cap_seqs = 0, cap_blocks = 0;

  static StepMetaLayout make(int64_t cap_tokens, int64_t cap_seqs, int64_t cap_blocks) {
    StepMetaLayout l;
    l.cap_tokens = cap_tokens;
    l.cap_seqs = cap_seqs;
    l.cap_blocks = cap_blocks;
    size_t at = 0;
    auto region = [&](int64_t n) {
      const size_t r = at;
      at += (static_cast<size_t>(n) + kAlign - 1) / kAlign * kAlign;
      return r;
    };
    l.tokens = region(cap_tokens);
    l.positions = region(cap_tokens);
    l.slots = region(cap_tokens);
    l.logit_rows = region(cap_tokens);
    l.query_start = region(cap_seqs + 1);
    l.kv_len = region(cap_seqs);
    l.block_start = region(cap_seqs + 1);
    l.block_ids = region(cap_blocks);
    l.total = at;
    return l;
  }
};

// Block-table entries the metadata holds at first: every sequence at the longest context, plus
// one block each for a decode bucket's padding.
inline int64_t step_meta_block_capacity(int64_t max_seqs, int64_t max_model_len, int64_t block_size) {
  return max_seqs * ((max_model_len + block_size - 1) / block_size + 1);
}

}  // namespace kiln::runtime
