// Token masks on the GPU sampler against the CPU sampler: the same tokens and logprobs for masked
// rows under every sampler setting (mixed with unmasked rows in one batch), never a disallowed
// token, and kNoAllowedToken for a mask that allows nothing.
#include <gtest/gtest.h>

#include <random>

#include "cuda_test_util.h"
#include "kiln/runtime/ops/sample.h"

namespace kiln::runtime {
namespace {

class CudaMaskedSampleTest : public testing::CudaTest {};

TEST_F(CudaMaskedSampleTest, MatchesCpuSampler) {
  uint32_t seed = 11;
  for (int64_t vocab : {1000, 151936}) {
    const int64_t wpr = (vocab + 31) / 32;
    std::vector<SamplingParams> params;
    std::vector<int32_t> positions, mask_row, history_start = {0}, history_tokens, prompt_len;
    std::vector<uint32_t> words;
    std::mt19937 rng(seed++);
    const int64_t m = 48;
    for (int64_t r = 0; r < m; ++r) {
      SamplingParams p;
      switch (r % 8) {
        case 0: p.temperature = 0.0f; break;
        case 1: p.temperature = 0.0f; p.num_logprobs = 5; break;
        case 2: p.temperature = 1.5f; break;
        case 3: p.temperature = 0.7f; p.top_k = 5; break;
        case 4: p.temperature = 1.3f; p.top_p = 0.9f; break;
        case 5: p.temperature = 1.0f; p.min_p = 0.05f; p.num_logprobs = 2; break;
        case 6: p.temperature = 0.9f; p.top_k = 50; p.top_p = 0.8f; p.min_p = 0.02f; break;
        default:
          p.temperature = 0.8f;
          p.repetition_penalty = 1.3f;
          p.presence_penalty = 0.5f;
          p.logit_bias = {{3, 100.0f}, {4, -5.0f}};
          break;
      }
      p.seed = rng();
      params.push_back(p);
      positions.push_back(static_cast<int32_t>(rng() % 4000));
      const int32_t hist = p.needs_history() ? 30 : 0;
      for (int32_t j = 0; j < hist; ++j) history_tokens.push_back(static_cast<int32_t>(rng() % 64));
      history_start.push_back(static_cast<int32_t>(history_tokens.size()));
      prompt_len.push_back(hist / 2);
      if (r % 5 == 4) {  // unmasked rows in the same batch
        mask_row.push_back(-1);
        continue;
      }
      mask_row.push_back(static_cast<int32_t>(words.size() / static_cast<size_t>(wpr)));
      std::vector<uint32_t> mk(static_cast<size_t>(wpr), 0);
      const int allowed = r == 0 ? 0 : (r % 3 == 0 ? 1 : static_cast<int>(rng() % 200) + 1);  // row 0: none
      for (int k = 0; k < allowed; ++k) {
        const auto t = static_cast<uint32_t>(rng() % static_cast<uint32_t>(vocab));
        mk[t / 32] |= 1u << (t % 32);
      }
      if (r % 7 == 1) std::fill(mk.begin(), mk.end(), ~0u);  // permissive rows
      words.insert(words.end(), mk.begin(), mk.end());
    }
    std::vector<float> logits = testing::random_bf16(static_cast<size_t>(m * vocab), seed++, 3.0f);
    ops::SamplingBatch batch;
    batch.params = params;
    batch.positions = positions;
    batch.history_start = history_start;
    batch.history_tokens = history_tokens;
    batch.prompt_len = prompt_len;
    batch.mask_row = mask_row;
    batch.mask_words = words;
    batch.mask_words_per_row = static_cast<int32_t>(wpr);

    Buffer gl = upload(logits, DType::kF32, {m, vocab});  // before the CPU sampler masks its copy
    std::vector<SampledToken> want, got;
    const Status cs = ops::sample(cpu_, Tensor(logits.data(), DType::kF32, Device::cpu(), {m, vocab}), batch, &want);
    ASSERT_TRUE(cs.is_ok()) << cs.to_string();
    const Status gs = ops::sample(gpu_, gl.tensor(), batch, &got);
    ASSERT_TRUE(gs.is_ok()) << gs.to_string();
    ASSERT_EQ(got.size(), want.size());
    EXPECT_EQ(want[0].token, ops::kNoAllowedToken);
    for (int64_t r = 0; r < m; ++r) {
      const auto i = static_cast<size_t>(r);
      SCOPED_TRACE(str_cat("vocab ", vocab, " row ", r));
      EXPECT_EQ(got[i].token, want[i].token);
      if (mask_row[i] >= 0 && got[i].token >= 0) {
        const uint32_t w = words[static_cast<size_t>(mask_row[i] * wpr + got[i].token / 32)];
        EXPECT_TRUE((w >> (got[i].token % 32)) & 1u) << "disallowed token " << got[i].token;
      }
      if (params[i].num_logprobs >= 0 && want[i].token >= 0) {
        EXPECT_NEAR(got[i].logprob, want[i].logprob, 1e-3);
        ASSERT_EQ(got[i].top.size(), want[i].top.size());
        for (size_t j = 0; j < want[i].top.size(); ++j) EXPECT_EQ(got[i].top[j].token, want[i].top[j].token);
      }
    }
    // The masked GPU logits equal the CPU's masked copy.
    testing::expect_close(download(gl.tensor()), logits, 0.0, 0.0, "masked logits");
  }
}

}  // namespace
}  // namespace kiln::runtime
