// Fidelity against Hugging Face transformers: kiln's CPU engine, on checkpoints remade from the
// fixtures' seeds, against logits that transformers computed in float32
// (tools/make_fidelity_fixtures.py wrote tests/fixtures/fidelity/<preset>.{safetensors,json}).
// A missing fixture fails the test: fidelity is never silently skipped.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "engine_test_util.h"
#include "kiln/core/file.h"
#include "kiln/model/checkpoint.h"
#include "kiln/runtime/static_batch.h"

namespace kiln::runtime {
namespace {

constexpr double kTolerance = 1e-4;  // max|kiln - hf| / max|hf| per logit row

struct Fixture {
  uint64_t seed = 0;
  int64_t vocab = 0;
  std::vector<int32_t> prompt;
  std::vector<std::vector<float>> prompt_logits, incremental_logits;
  std::vector<int32_t> greedy;
};

std::vector<std::vector<float>> rows_of(const model::TensorInfo& t) {
  std::vector<std::vector<float>> rows;
  const auto* data = reinterpret_cast<const float*>(t.data);
  for (int64_t r = 0; r < t.shape[0]; ++r) rows.emplace_back(data + r * t.shape[1], data + (r + 1) * t.shape[1]);
  return rows;
}

// Loads the fixture of `preset`, or fails the test saying how to make it.
bool load_fixture(const std::string& preset, Fixture* f) {
  const auto dir = std::filesystem::path(KILN_SOURCE_DIR) / "tests" / "fixtures" / "fidelity";
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

void expect_close(const std::vector<std::vector<float>>& kiln, const std::vector<std::vector<float>>& hf,
                  const std::string& what) {
  ASSERT_EQ(kiln.size(), hf.size()) << what;
  for (size_t r = 0; r < hf.size(); ++r) {
    ASSERT_EQ(kiln[r].size(), hf[r].size()) << what;
    double err = 0, scale = 0;
    for (size_t i = 0; i < hf[r].size(); ++i) {
      err = std::max(err, std::abs(static_cast<double>(kiln[r][i]) - hf[r][i]));
      scale = std::max(scale, std::abs(static_cast<double>(hf[r][i])));
    }
    EXPECT_LE(err / scale, kTolerance) << what << ", position " << r << ": max|diff| " << err << ", max|hf| " << scale;
  }
}

class FidelityTest : public ::testing::TestWithParam<std::string> {};

TEST_P(FidelityTest, fidelity_logits_and_greedy_match_transformers) {
  Fixture f;
  if (!load_fixture(GetParam(), &f)) return;
  auto engine = testing::load_engine(testing::tiny_model(GetParam(), f.seed, f.vocab));
  ASSERT_TRUE(engine);
  const int32_t n = static_cast<int32_t>(f.prompt.size());

  expect_close(testing::logits_in_chunks(*engine, f.prompt, {n}, 1), f.prompt_logits, GetParam() + " whole prompt");
  expect_close(testing::logits_in_chunks(*engine, f.prompt, {1}, 2), f.incremental_logits, GetParam() + " token by token");
  const std::vector<std::vector<int32_t>> splits = {{5, 7}, {1, 11}, {3}, {11, 1}, {2, 9, 1}};
  for (size_t i = 0; i < splits.size(); ++i)
    expect_close(testing::logits_in_chunks(*engine, f.prompt, splits[i], static_cast<uint32_t>(3 + i)), f.prompt_logits,
                 GetParam() + " chunked split " + std::to_string(i));

  StaticBatch batch(*engine, n);
  SamplingParams greedy;
  greedy.temperature = 0;
  batch.add(f.prompt, greedy);
  while (batch.generated(0) < static_cast<int32_t>(f.greedy.size())) {
    auto s = batch.step(0, false);
    ASSERT_TRUE(s.is_ok()) << s.status().to_string();
  }
  const std::vector<int32_t> got(batch.tokens(0).begin() + n, batch.tokens(0).end());
  EXPECT_EQ(got, f.greedy) << GetParam() << " greedy continuation";
}

INSTANTIATE_TEST_SUITE_P(Presets, FidelityTest,
                         ::testing::Values("tiny-llama", "tiny-mistral", "tiny-qwen2", "tiny-qwen3"),
                         [](const auto& p) {
                           std::string s = p.param;
                           std::replace(s.begin(), s.end(), '-', '_');
                           return s;
                         });

}  // namespace
}  // namespace kiln::runtime
