// Helpers for the memory plan tests (CPU here, CUDA in cuda_memory_plan_test.cpp): every preset
// of `kiln make-model --list-presets` shrunk to a small shape that keeps what decides its memory
// (tied embeddings, biases, q/k norms, grouped KV heads), and the check of an engine's measured
// allocation against its plan.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "kiln/core/str.h"
#include "kiln/model/make_model.h"
#include "kiln/runtime/engine.h"
#include "engine_test_util.h"

namespace kiln::runtime::testing {

inline std::vector<std::string> all_presets() {
  std::vector<std::string> names;
  for (const model::Preset& p : model::presets()) names.emplace_back(p.name);
  return names;
}

// `preset` at a small shape (made once per process): its architecture and flags, 2 layers,
// hidden 128 of 4 heads of 32 over 2 KV heads, vocab `vocab`, 512 positions.
inline std::filesystem::path shrunk_preset(const std::string& preset, int64_t vocab) {
  model::MakeModelOptions o;
  o.preset = preset;
  o.vocab_size = vocab;
  o.allow_small_vocab = true;
  o.hidden_size = 128;
  o.intermediate_size = 320;
  o.num_layers = 2;
  o.num_heads = 4;
  o.num_kv_heads = 2;
  o.head_dim = 32;
  o.max_position_embeddings = 512;
  const auto base = model::preset_config(preset);
  if (base.is_ok() && base->is_moe()) {  // 8 experts of 64 (mixtral's are intermediate_size wide)
    o.num_experts = 8;
    o.num_experts_per_tok = std::min<int64_t>(base->num_experts_per_tok, 4);
    if (base->architecture == model::Architecture::kQwen3Moe) o.moe_intermediate_size = 64;
  }
  return cached_test_model(o, str_cat("shrunk-", preset, "-", vocab));
}

// The engine's measured allocation against the plan it was built from: weights and KV cache to
// the byte; the workspace at most the plan, and at least the plan less what the engine allocates
// on first use and less `workspace_slack`.
inline void expect_allocation_matches_plan(const Engine& e, int64_t workspace_slack, const std::string& what) {
  const MemoryPlan& plan = e.memory_plan();
  const MemoryUsage used = e.memory_usage();
  EXPECT_EQ(used.weights_bytes, plan.weights_bytes) << what;
  EXPECT_EQ(used.kv_cache_bytes, plan.kv_cache_bytes) << what;
  EXPECT_EQ(used.kv_cache_bytes, int64_t{plan.limits.num_kv_blocks} * plan.kv_bytes_per_block) << what;
  EXPECT_LE(used.workspace_bytes, plan.workspace_bytes) << what;
  EXPECT_GE(used.workspace_bytes, plan.workspace_bytes - plan.workspace_on_first_use_bytes - workspace_slack) << what;
}

}  // namespace kiln::runtime::testing
