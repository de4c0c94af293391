// The transformers fidelity fixtures (tools/make_fidelity_fixtures.py wrote
// tests/fixtures/fidelity/<preset>.{safetensors,json}): logits that transformers computed in
// float32 for a tiny checkpoint remade from the fixture's seed, shared by the CPU and CUDA
// fidelity tests. A missing fixture fails the test: fidelity is never silently skipped.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "kiln/core/file.h"
#include "kiln/model/checkpoint.h"

namespace kiln::runtime::testing {

struct Fixture {
  uint64_t seed = 0;
  int64_t vocab = 0;
  // transformers' own error in bf16 on the prompt, as expect_close measures it (0: not recorded).
  double hf_bf16_error = 0.0;
  std::vector<int32_t> prompt;
  std::vector<std::vector<float>> prompt_logits, incremental_logits;
  std::vector<int32_t> greedy;
};

inline std::vector<std::vector<float>> rows_of(const model::TensorInfo& t) {
  std::vector<std::vector<float>> rows;
  const auto* data = reinterpret_cast<const float*>(t.data);
  for (int64_t r = 0; r < t.shape[0]; ++r) rows.emplace_back(data + r * t.shape[1], data + (r + 1) * t.shape[1]);
  return rows;
}

inline std::filesystem::path fixture_dir() {
  return std::filesystem::path(KILN_SOURCE_DIR) / "tests" / "fixtures" / "fidelity";
}

// Loads the fixture of `preset`, or fails the test saying how to make it.
inline bool load_fixture(const std::string& preset, Fixture* f) {
  const auto dir = fixture_dir();
  const auto tensors = dir / (preset + ".safetensors"), info = dir / (preset + ".json");
  if (!std::filesystem::exists(tensors) || !std::filesystem::exists(info)) {
    ADD_FAILURE() << "fidelity fixture missing: " << tensors << " / " << info
                  << "\nmake it on a machine with torch + transformers:\n"
                     "  python3 tools/make_fidelity_fixtures.py --kiln build/release/apps/kiln/kiln";
    return false;
  }
  auto text = read_file(info);
  if (!text.is_ok()) {
    ADD_FAILURE() << text.status().to_string();
    return false;
  }
  const auto j = nlohmann::json::parse(*text, nullptr, false);
  if (j.is_discarded() || !j.contains("seed") || !j.contains("prompt_ids") || !j.contains("vocab_size")) {
    ADD_FAILURE() << info << " is not a fidelity fixture description";
    return false;
  }
  f->seed = j["seed"].get<uint64_t>();
  f->vocab = j["vocab_size"].get<int64_t>();
  if (j.contains("hf_bf16_prompt_rel_error") && j["hf_bf16_prompt_rel_error"].is_number())
    f->hf_bf16_error = j["hf_bf16_prompt_rel_error"].get<double>();
  f->prompt = j["prompt_ids"].get<std::vector<int32_t>>();
  auto ck = model::Checkpoint::open_file(tensors);
  if (!ck.is_ok()) {
    ADD_FAILURE() << ck.status().to_string();
    return false;
  }
  const int64_t n = static_cast<int64_t>(f->prompt.size());
  auto pl = (*ck)->get("prompt_logits", {n, f->vocab});
  auto il = (*ck)->get("incremental_logits", {n, f->vocab});
  const auto& all = (*ck)->tensors();
  auto g = all.find("greedy_tokens");
  if (!pl.is_ok() || !il.is_ok() || g == all.end() || g->second.dtype != DType::kI32 || (*pl)->dtype != DType::kF32 ||
      (*il)->dtype != DType::kF32) {
    ADD_FAILURE() << tensors << ": expected F32 prompt_logits and incremental_logits [" << n << ", " << f->vocab
                  << "] and I32 greedy_tokens";
    return false;
  }
  f->prompt_logits = rows_of(**pl);
  f->incremental_logits = rows_of(**il);
  const auto* gt = reinterpret_cast<const int32_t*>(g->second.data);
  f->greedy.assign(gt, gt + g->second.numel());
  return true;
}

// Every row of kiln's logits within `tolerance` of transformers' (max|diff| / max|hf| per row).
inline void expect_close(const std::vector<std::vector<float>>& kiln, const std::vector<std::vector<float>>& hf,
                         double tolerance, const std::string& what) {
  ASSERT_EQ(kiln.size(), hf.size()) << what;
  for (size_t r = 0; r < hf.size(); ++r) {
    ASSERT_EQ(kiln[r].size(), hf[r].size()) << what;
    double err = 0, scale = 0;
    for (size_t i = 0; i < hf[r].size(); ++i) {
      err = std::max(err, std::abs(static_cast<double>(kiln[r][i]) - hf[r][i]));
      scale = std::max(scale, std::abs(static_cast<double>(hf[r][i])));
    }
    EXPECT_LE(err / scale, tolerance) << what << ", position " << r << ": max|diff| " << err << ", max|hf| " << scale;
  }
}

}  // namespace kiln::runtime::testing
