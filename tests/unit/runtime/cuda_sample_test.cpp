// The GPU sampler against the CPU sampler on the same logits: the same tokens (greedy and seeded
// draws under every truncation), the same logprobs and top logprobs.
#include <gtest/gtest.h>

#include <random>

#include "cuda_test_util.h"
#include "kiln/runtime/ops/sample.h"

namespace kiln::runtime {
namespace {

class CudaSampleTest : public testing::CudaTest {};

std::vector<SamplingParams> param_mix(int64_t vocab) {
  std::vector<SamplingParams> v;
  auto add = [&](auto f) {
    SamplingParams p;
    f(p);
    v.push_back(p);
  };
  add([](SamplingParams& p) { p.temperature = 0.0f; });
  add([](SamplingParams& p) { p.temperature = 0.0f; p.num_logprobs = 5; });
  add([](SamplingParams& p) { p.temperature = 1.0f; });
  add([](SamplingParams& p) { p.temperature = 0.7f; p.top_k = 5; });
  add([](SamplingParams& p) { p.temperature = 1.3f; p.top_p = 0.9f; });
  add([](SamplingParams& p) { p.temperature = 1.0f; p.min_p = 0.05f; });
  add([](SamplingParams& p) { p.temperature = 0.9f; p.top_k = 50; p.top_p = 0.8f; p.min_p = 0.02f; p.num_logprobs = 3; });
  add([](SamplingParams& p) { p.temperature = 1.0f; p.top_k = 1; });
  add([](SamplingParams& p) { p.temperature = 2.0f; p.top_p = 0.5f; });
  add([&](SamplingParams& p) {
    p.temperature = 0.8f;
    p.repetition_penalty = 1.3f;
    p.presence_penalty = 0.5f;
    p.frequency_penalty = 0.25f;
    p.logit_bias = {{3, 5.0f}, {static_cast<int32_t>(vocab - 1), -100.0f}, {3, 1.0f}};
    p.num_logprobs = 0;
  });
  add([](SamplingParams& p) {
    p.temperature = 0.0f;
    p.repetition_penalty = 0.8f;
    p.num_logprobs = 40;  // more than the device computes: finished on the host
  });
  add([&](SamplingParams& p) {  // every token biased away: the raw argmax
    p.temperature = 1.0f;
    for (int32_t t = 0; t < vocab; ++t) p.logit_bias.push_back({t, -INFINITY});
  });
  return v;
}

TEST_F(CudaSampleTest, MatchesCpuSampler) {
  uint32_t seed = 7;
  for (int64_t vocab : {1000, 50000, 151936}) {
    const std::vector<SamplingParams> mix = param_mix(vocab);
    const int64_t m = static_cast<int64_t>(mix.size()) * 3;
    std::vector<SamplingParams> params;
    std::vector<int32_t> positions, history_start = {0}, history_tokens, prompt_len;
    std::mt19937 rng(seed++);
    for (int64_t r = 0; r < m; ++r) {
      SamplingParams p = mix[static_cast<size_t>(r) % mix.size()];
      p.seed = rng();
      params.push_back(p);
      positions.push_back(static_cast<int32_t>(rng() % 4000));
      const int32_t hist = p.needs_history() ? 30 : 0;
      for (int32_t j = 0; j < hist; ++j) history_tokens.push_back(static_cast<int32_t>(rng() % 64));  // repeats
      history_start.push_back(static_cast<int32_t>(history_tokens.size()));
      prompt_len.push_back(hist / 2);
    }
    std::vector<float> logits = testing::random_bf16(static_cast<size_t>(m * vocab), seed++, 3.0f);
    for (int64_t r = 0; r < m; ++r) logits[static_cast<size_t>(r * vocab + 3)] += 4.0f;  // some rows favour token 3
    ops::SamplingBatch batch;
    batch.params = params;
    batch.positions = positions;
    batch.history_start = history_start;
    batch.history_tokens = history_tokens;
    batch.prompt_len = prompt_len;

    std::vector<SampledToken> want, got;
    const Status cs = ops::sample(cpu_, Tensor(logits.data(), DType::kF32, Device::cpu(), {m, vocab}), batch, &want);
    ASSERT_TRUE(cs.is_ok()) << cs.to_string();
    Buffer gl = upload(logits, DType::kF32, {m, vocab});
    const Status gs = ops::sample(gpu_, gl.tensor(), batch, &got);
    ASSERT_TRUE(gs.is_ok()) << gs.to_string();
    ASSERT_EQ(got.size(), want.size());
    for (int64_t r = 0; r < m; ++r) {
      const auto i = static_cast<size_t>(r);
      SCOPED_TRACE(str_cat("vocab ", vocab, " row ", r, " temperature ", params[i].temperature, " top_k ", params[i].top_k,
                           " top_p ", params[i].top_p, " min_p ", params[i].min_p));
      EXPECT_EQ(got[i].token, want[i].token);
      if (params[i].num_logprobs >= 0) {
        EXPECT_NEAR(got[i].logprob, want[i].logprob, 1e-3);
        ASSERT_EQ(got[i].top.size(), want[i].top.size());
        for (size_t j = 0; j < want[i].top.size(); ++j) {
          EXPECT_EQ(got[i].top[j].token, want[i].top[j].token) << "top " << j;
          EXPECT_NEAR(got[i].top[j].logprob, want[i].top[j].logprob, 1e-3) << "top " << j;
        }
      }
    }
    // The logits are read-only.
    testing::expect_close(download(gl.tensor()), logits, 0.0, 0.0, "logits after sampling");
  }
}

// Small batches take a greedy row's argmax in slices of the vocabulary: the first of equal
// maxima wins across slices, a row of -inf gives token 0, and rows that also want logprobs (one
// block over the whole row) sit in the same batch.
TEST_F(CudaSampleTest, GreedyArgmaxOverVocabularySlicesMatchesCpu) {
  const int64_t vocab = 151936;
  uint32_t seed = 40;
  for (int64_t m : {1, 3, 8, 17, 300}) {
    std::vector<float> logits = testing::random_bf16(static_cast<size_t>(m * vocab), seed++, 3.0f);
    std::vector<SamplingParams> params(static_cast<size_t>(m));
    const std::vector<int32_t> positions(static_cast<size_t>(m), 5);
    for (int64_t r = 0; r < m; ++r) {
      float* row = logits.data() + r * vocab;
      SamplingParams& p = params[static_cast<size_t>(r)];
      p.temperature = 0.0f;
      if (r % 4 == 0) {  // equal maxima in different slices: the lower id
        row[vocab - 7] = 50.0f;
        row[(r * 7919 + 11) % (vocab / 2)] = 50.0f;
      } else if (r % 4 == 1) {
        std::fill(row, row + vocab, -INFINITY);
      } else if (r % 4 == 2) {
        row[vocab - 1] = 60.0f;
        p.num_logprobs = 2;
      }
    }
    ops::SamplingBatch batch;
    batch.params = params;
    batch.positions = positions;
    std::vector<SampledToken> want, got;
    ASSERT_TRUE(ops::sample(cpu_, Tensor(logits.data(), DType::kF32, Device::cpu(), {m, vocab}), batch, &want).is_ok());
    Buffer gl = upload(logits, DType::kF32, {m, vocab});
    const Status gs = ops::sample(gpu_, gl.tensor(), batch, &got);
    ASSERT_TRUE(gs.is_ok()) << gs.to_string();
    ASSERT_EQ(got.size(), want.size());
    for (int64_t r = 0; r < m; ++r) {
      EXPECT_EQ(got[static_cast<size_t>(r)].token, want[static_cast<size_t>(r)].token) << "m " << m << " row " << r;
    }
  }
}

// Untruncated draws of batches up to 256 rows sum their weights by vocabulary slices (32 per row
// at 9 rows, 8 at 64, 2 at 256), top-k rows sample among the slices' candidates, and top-p rows
// run their radix selects over the slices; integer sums do not depend on the split and the
// candidates hold every token a row keeps, so every row draws the token that one block per row (a
// batch of 300) draws.
TEST_F(CudaSampleTest, UntruncatedDrawsOverVocabularySlicesMatchOneBlockPerRow) {
  const int64_t vocab = 32000, m = 300;
  std::vector<float> logits = testing::random_bf16(static_cast<size_t>(m * vocab), 70, 4.0f);
  std::vector<SamplingParams> params(static_cast<size_t>(m));
  std::vector<int32_t> positions(static_cast<size_t>(m));
  for (int64_t r = 0; r < m; ++r) {
    float* row = logits.data() + r * vocab;
    SamplingParams& p = params[static_cast<size_t>(r)];
    p.temperature = r % 3 == 0 ? 1.0f : (r % 3 == 1 ? 0.7f : 1.5f);
    p.seed = 1000u + static_cast<uint64_t>(r);
    positions[static_cast<size_t>(r)] = static_cast<int32_t>(17 + r);
    if (r % 10 == 1) p.min_p = 0.05f;
    if (r % 10 == 2) row[vocab - 3] = 40.0f;  // one token holds nearly all the weight
    if (r % 10 == 3) std::fill(row, row + vocab, -INFINITY);
    if (r % 10 == 4) {
      for (int64_t i = 0; i < vocab; i += 97) row[i] = NAN;
    }
    if (r % 10 == 5) {  // top-p alone: its two radix selects over the slices
      p.top_p = 0.9f;
      if (r % 20 == 15) {  // the set's last token among 200 equal logits spread over the slices
        p.top_p = 0.3f;
        for (int64_t t = 0; t < 200; ++t) row[(t * 157 + 5) % vocab] = 12.0f;
      }
      if (r % 30 == 25) p.min_p = 0.02f;
    }
    if (r % 10 == 6) p.temperature = 0.0f;
    if (r % 10 == 7) p.top_k = 40;  // top-k rows: the slices' candidates
    if (r % 10 == 8) {
      p.top_k = 20;
      p.top_p = 0.9f;
      p.min_p = 0.01f;
    }
    if (r % 10 == 9) {  // ties at the k-th logit: 50 in one slice, then 100 (too many: the whole row)
      p.top_k = 30;
      const int64_t ties = r % 20 == 9 ? 50 : 100;
      for (int64_t t = 0; t < ties; ++t) row[100 + 3 * t] = 9.0f;
    }
  }
  const auto run = [&](int64_t count) {
    ops::SamplingBatch batch;
    batch.params = std::span<const SamplingParams>(params).first(static_cast<size_t>(count));
    batch.positions = std::span<const int32_t>(positions).first(static_cast<size_t>(count));
    std::vector<float> part(logits.begin(), logits.begin() + count * vocab);
    Buffer gl = upload(part, DType::kF32, {count, vocab});
    std::vector<SampledToken> got;
    const Status st = ops::sample(gpu_, gl.tensor(), batch, &got);
    EXPECT_TRUE(st.is_ok()) << st.to_string();
    return got;
  };
  const std::vector<SampledToken> whole = run(m);
  ASSERT_EQ(whole.size(), static_cast<size_t>(m));
  for (int64_t count : {1, 9, 64, 256}) {
    const std::vector<SampledToken> sliced = run(count);
    ASSERT_EQ(sliced.size(), static_cast<size_t>(count));
    for (int64_t r = 0; r < count; ++r) {
      EXPECT_EQ(sliced[static_cast<size_t>(r)].token, whole[static_cast<size_t>(r)].token) << count << " rows, row " << r;
    }
  }
  for (int64_t r = 0; r < m; ++r) {
    EXPECT_GE(whole[static_cast<size_t>(r)].token, 0);
    if (r % 10 == 2) {
      EXPECT_EQ(whole[static_cast<size_t>(r)].token, vocab - 3) << "row " << r;
    }
  }
}

TEST_F(CudaSampleTest, SeededDrawsRepeatAndFollowTheDistribution) {
  // Four tokens with probabilities 0.1, 0.2, 0.3, 0.4 at temperature 1; 4000 rows, one seed each.
  const int64_t vocab = 4, m = 4000;
  std::vector<float> logits;
  for (int64_t r = 0; r < m; ++r)
    for (double p : {0.1, 0.2, 0.3, 0.4}) logits.push_back(static_cast<float>(std::log(p)));
  std::vector<SamplingParams> params(static_cast<size_t>(m));
  std::vector<int32_t> positions(static_cast<size_t>(m), 11);
  for (int64_t r = 0; r < m; ++r) {
    params[static_cast<size_t>(r)].temperature = 1.0f;
    params[static_cast<size_t>(r)].seed = static_cast<uint64_t>(r) * 7919u + 1u;
  }
  ops::SamplingBatch batch;
  batch.params = params;
  batch.positions = positions;
  Buffer gl = upload(logits, DType::kF32, {m, vocab});
  std::vector<SampledToken> a, b;
  ASSERT_TRUE(ops::sample(gpu_, gl.tensor(), batch, &a).is_ok());
  ASSERT_TRUE(ops::sample(gpu_, gl.tensor(), batch, &b).is_ok());
  std::vector<int> counts(4, 0);
  for (int64_t r = 0; r < m; ++r) {
    ASSERT_EQ(a[static_cast<size_t>(r)].token, b[static_cast<size_t>(r)].token);
    ASSERT_GE(a[static_cast<size_t>(r)].token, 0);
    ASSERT_LT(a[static_cast<size_t>(r)].token, 4);
    ++counts[static_cast<size_t>(a[static_cast<size_t>(r)].token)];
  }
  // Each count within 5 standard deviations of its expectation.
  for (int t = 0; t < 4; ++t) {
    const double p = 0.1 * (t + 1), mean = p * m, sd = std::sqrt(m * p * (1 - p));
    EXPECT_NEAR(counts[static_cast<size_t>(t)], mean, 5 * sd) << "token " << t;
  }
}

}  // namespace
}  // namespace kiln::runtime
