// Token masks in the sampler (structured generation): a masked row never yields a disallowed token
// under any sampler setting, and samples exactly as the same row does with the disallowed logits
// set to -inf by hand; logprobs describe the masked distribution; a mask that allows nothing is
// reported, not sampled.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <set>

#include "kiln/core/thread_pool.h"
#include "kiln/runtime/ops/sample.h"
#include "runtime_test_util.h"

namespace kiln::runtime {
namespace {

constexpr int64_t kVocab = 301;  // not a multiple of 32: the last word has bits past the vocabulary
constexpr int32_t kWords = (kVocab + 31) / 32;

bool allowed(const std::vector<uint32_t>& mask, int32_t t) { return ((mask[static_cast<size_t>(t) / 32] >> (t % 32)) & 1u) != 0; }

std::vector<uint32_t> mask_of(const std::set<int32_t>& tokens) {
  std::vector<uint32_t> m(kWords, 0);
  for (int32_t t : tokens) m[static_cast<size_t>(t) / 32] |= 1u << (t % 32);
  return m;
}

// Every sampler setting the API offers, alone and combined, with penalties and biases.
std::vector<SamplingParams> settings() {
  std::vector<SamplingParams> v;
  auto add = [&](auto f) {
    SamplingParams p;
    f(p);
    v.push_back(p);
  };
  add([](SamplingParams& p) { p.temperature = 0.0f; });
  add([](SamplingParams& p) { p.temperature = 0.0f; p.num_logprobs = 5; });
  add([](SamplingParams& p) { p.temperature = 1.0f; });
  add([](SamplingParams& p) { p.temperature = 1.5f; });
  add([](SamplingParams& p) { p.temperature = 0.7f; p.top_k = 5; });
  add([](SamplingParams& p) { p.temperature = 1.3f; p.top_p = 0.9f; });
  add([](SamplingParams& p) { p.temperature = 1.0f; p.min_p = 0.05f; });
  add([](SamplingParams& p) { p.temperature = 0.9f; p.top_k = 50; p.top_p = 0.8f; p.min_p = 0.02f; p.num_logprobs = 3; });
  add([](SamplingParams& p) { p.temperature = 2.0f; p.top_p = 0.5f; });
  add([](SamplingParams& p) {
    p.temperature = 0.8f;
    p.repetition_penalty = 1.3f;
    p.presence_penalty = 0.5f;
    p.frequency_penalty = 0.25f;
    p.num_logprobs = 0;
  });
  add([](SamplingParams& p) { p.temperature = 0.0f; p.repetition_penalty = 0.5f; });
  return v;
}

class MaskedSamplerTest : public ::testing::Test {
 protected:
  MaskedSamplerTest() : pool_(2) { ctx_.pool = &pool_; }

  // Samples rows (logits copied: masking writes them) with masks; mask_row[i] -1 for none.
  std::vector<SampledToken> run(std::vector<float> logits, const std::vector<SamplingParams>& params,
                                const std::vector<int32_t>& positions, const std::vector<int32_t>& mask_row,
                                const std::vector<uint32_t>& words, Status* status = nullptr) {
    const int64_t m = static_cast<int64_t>(params.size());
    // A history for the penalties: every row saw tokens 0..9, the last five as output.
    std::vector<int32_t> hist_start, hist, prompt_len;
    hist_start.push_back(0);
    for (int64_t i = 0; i < m; ++i) {
      for (int32_t t = 0; t < 10; ++t) hist.push_back(t);
      hist_start.push_back(static_cast<int32_t>(hist.size()));
      prompt_len.push_back(5);
    }
    ops::SamplingBatch b{params, positions, hist_start, hist, prompt_len, mask_row, words, kWords};
    if (mask_row.empty()) b.mask_words_per_row = 0;
    std::vector<SampledToken> out;
    Status st = ops::sample(ctx_, testing::host_f32(logits, {m, kVocab}), b, &out);
    if (status != nullptr) {
      *status = st;
    } else {
      EXPECT_TRUE(st.is_ok()) << st.to_string();
    }
    return out;
  }

  ThreadPool pool_;
  DeviceContext ctx_;
};

std::vector<float> random_logits(std::mt19937& rng, int64_t rows) {
  std::normal_distribution<float> d(0.0f, 3.0f);
  std::vector<float> l(static_cast<size_t>(rows * kVocab));
  for (float& x : l) x = d(rng);
  return l;
}

std::set<int32_t> random_allowed(std::mt19937& rng, int count) {
  std::set<int32_t> s;
  std::uniform_int_distribution<int32_t> d(0, static_cast<int32_t>(kVocab) - 1);
  while (static_cast<int>(s.size()) < count) s.insert(d(rng));
  return s;
}

TEST_F(MaskedSamplerTest, NeverDisallowedAndSameAsMaskingByHand) {
  std::mt19937 rng(7);
  const std::vector<SamplingParams> base = settings();
  for (int allowed_count : {1, 2, 7, 40, 300}) {
    for (size_t s = 0; s < base.size(); ++s) {
      for (int trial = 0; trial < 12; ++trial) {
        SamplingParams p = base[s];
        p.seed = static_cast<uint64_t>(trial) * 977u + 3;
        const std::set<int32_t> ok = random_allowed(rng, allowed_count);
        const std::vector<uint32_t> mask = mask_of(ok);
        // Bias pushes a disallowed token far above the rest, and an allowed one down.
        for (int32_t t = 0; t < kVocab; ++t) {
          if (!ok.count(t)) {
            p.logit_bias = {{t, 100.0f}, {*ok.begin(), -3.0f}};
            break;
          }
        }
        std::vector<float> logits = random_logits(rng, 1);
        const SampledToken got = run(logits, {p}, {trial}, {0}, mask)[0];
        ASSERT_TRUE(ok.count(got.token)) << "setting " << s << " trial " << trial << " drew " << got.token;
        // The reference: no mask, the disallowed logits -inf by hand (their bias cannot lift -inf).
        std::vector<float> by_hand = logits;
        for (int32_t t = 0; t < kVocab; ++t) if (!ok.count(t)) by_hand[static_cast<size_t>(t)] = -INFINITY;
        const SampledToken want = run(by_hand, {p}, {trial}, {}, {})[0];
        EXPECT_EQ(got.token, want.token) << "setting " << s << " trial " << trial;
        if (p.num_logprobs >= 0) {
          EXPECT_FLOAT_EQ(got.logprob, want.logprob);
          for (const TokenLogprob& e : got.top) EXPECT_TRUE(ok.count(e.token));
          EXPECT_EQ(got.top.size(), std::min<size_t>(static_cast<size_t>(p.num_logprobs), ok.size()));
        }
      }
    }
  }
}

TEST_F(MaskedSamplerTest, LogprobsAreOfTheMaskedDistribution) {
  // Allowed: 3 (logit 0) and 4 (logit ln 3): probabilities 1/4 and 3/4 however large the rest.
  std::vector<float> logits(kVocab, 10.0f);
  logits[3] = 0.0f;
  logits[4] = std::log(3.0f);
  SamplingParams p;
  p.temperature = 0.0f;
  p.num_logprobs = 5;
  const SampledToken t = run(logits, {p}, {0}, {0}, mask_of({3, 4}))[0];
  EXPECT_EQ(t.token, 4);
  EXPECT_NEAR(t.logprob, std::log(0.75), 1e-5);
  ASSERT_EQ(t.top.size(), 2u);
  EXPECT_EQ(t.top[0].token, 4);
  EXPECT_EQ(t.top[1].token, 3);
  EXPECT_NEAR(t.top[1].logprob, std::log(0.25), 1e-5);
}

TEST_F(MaskedSamplerTest, RowsAreIndependentOfTheirBatch) {
  std::mt19937 rng(11);
  const std::vector<SamplingParams> ps = settings();
  const int64_t m = static_cast<int64_t>(ps.size());
  std::vector<float> logits = random_logits(rng, m);
  std::vector<int32_t> positions, mask_row;
  std::vector<uint32_t> words;
  for (int64_t i = 0; i < m; ++i) {
    positions.push_back(static_cast<int32_t>(i * 3));
    if (i % 3 == 2) {
      mask_row.push_back(-1);  // unconstrained rows share the batch
      continue;
    }
    mask_row.push_back(static_cast<int32_t>(words.size() / kWords));
    const std::vector<uint32_t> mk = mask_of(random_allowed(rng, 20));
    words.insert(words.end(), mk.begin(), mk.end());
  }
  const std::vector<SampledToken> batch = run(logits, ps, positions, mask_row, words);
  for (int64_t i = 0; i < m; ++i) {
    const auto u = static_cast<size_t>(i);
    std::vector<float> row(logits.begin() + i * kVocab, logits.begin() + (i + 1) * kVocab);
    std::vector<uint32_t> one;
    if (mask_row[u] >= 0) one.assign(words.begin() + mask_row[u] * kWords, words.begin() + (mask_row[u] + 1) * kWords);
    const SampledToken alone = run(row, {ps[u]}, {positions[u]}, mask_row[u] >= 0 ? std::vector<int32_t>{0} : std::vector<int32_t>{},
                                   one)[0];
    EXPECT_EQ(batch[u].token, alone.token) << "row " << i;
    if (mask_row[u] >= 0) {
      EXPECT_TRUE(allowed(one, batch[u].token));
    }
  }
}

TEST_F(MaskedSamplerTest, EmptyMaskReportsNoTokenAndLeavesOtherRowsAlone) {
  std::mt19937 rng(3);
  std::vector<float> logits = random_logits(rng, 2);
  SamplingParams greedy;
  greedy.temperature = 0.0f;
  greedy.num_logprobs = 2;
  std::vector<uint32_t> words(kWords, 0);  // row 0: nothing allowed
  const std::vector<uint32_t> second = mask_of({5, 6});
  words.insert(words.end(), second.begin(), second.end());
  const std::vector<SampledToken> out = run(logits, {greedy, greedy}, {0, 0}, {0, 1}, words);
  EXPECT_EQ(out[0].token, ops::kNoAllowedToken);
  EXPECT_TRUE(out[0].top.empty());
  EXPECT_TRUE(out[1].token == 5 || out[1].token == 6);
  // Bits past the vocabulary do not count as allowed tokens.
  std::vector<uint32_t> past(kWords, 0);
  past[kWords - 1] = ~0u << (kVocab % 32);
  EXPECT_EQ(run(random_logits(rng, 1), {greedy}, {0}, {0}, past)[0].token, ops::kNoAllowedToken);
}

TEST_F(MaskedSamplerTest, EveryAllowedTokenBiasedAwayTakesTheLowestAllowed) {
  std::mt19937 rng(5);
  for (float temperature : {0.0f, 1.0f}) {
    SamplingParams p;
    p.temperature = temperature;
    p.top_k = temperature > 0 ? 3 : 0;
    p.logit_bias = {{17, -INFINITY}, {40, -INFINITY}};
    EXPECT_EQ(run(random_logits(rng, 1), {p}, {0}, {0}, mask_of({17, 40}))[0].token, 17);
  }
}

TEST_F(MaskedSamplerTest, RefusesMalformedMasks) {
  std::vector<float> logits(kVocab, 0.0f);
  SamplingParams p;
  Status st;
  std::vector<int32_t> pos = {0};
  std::vector<int32_t> rows = {0};
  std::vector<uint32_t> words(kWords, ~0u);
  ops::SamplingBatch b{std::span<const SamplingParams>(&p, 1), pos, {}, {}, {}, rows, words, kWords - 1};
  std::vector<SampledToken> out;
  EXPECT_FALSE(ops::sample(ctx_, testing::host_f32(logits, {1, kVocab}), b, &out).is_ok());
  run(logits, {p}, {0}, {1}, words, &st);  // row 1 of a one-row mask
  EXPECT_FALSE(st.is_ok());
  p.logit_bias = {{3, INFINITY}};  // would undo the mask
  run(logits, {p}, {0}, {0}, words, &st);
  EXPECT_FALSE(st.is_ok());
}

}  // namespace
}  // namespace kiln::runtime
