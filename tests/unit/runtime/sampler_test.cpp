// The sampler: Philox known answers, greedy, seeded reproducibility, exact top-k / top-p / min-p
// filtering, penalties and logit bias with exact numbers, logprobs.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <set>

#include "kiln/core/thread_pool.h"
#include "kiln/runtime/backend/cpu/kernels_cpu.h"
#include "kiln/runtime/ops/sample.h"
#include "kiln/runtime/philox.h"
#include "runtime_test_util.h"

namespace kiln::runtime {
namespace {

// Known-answer vectors of the Random123 distribution for philox4x32-10.
TEST(PhiloxTest, KnownAnswers) {
  auto run = [](Philox4x32 c, uint32_t k0, uint32_t k1) { return philox4x32_10(c, k0, k1); };
  Philox4x32 r = run({{0, 0, 0, 0}}, 0, 0);
  EXPECT_EQ(r.v[0], 0x6627e8d5u);
  EXPECT_EQ(r.v[1], 0xe169c58du);
  EXPECT_EQ(r.v[2], 0xbc57ac4cu);
  EXPECT_EQ(r.v[3], 0x9b00dbd8u);
  r = run({{0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu}}, 0xffffffffu, 0xffffffffu);
  EXPECT_EQ(r.v[0], 0x408f276du);
  EXPECT_EQ(r.v[1], 0x41c83b0eu);
  EXPECT_EQ(r.v[2], 0xa20bc7c6u);
  EXPECT_EQ(r.v[3], 0x6d5451fdu);
  r = run({{0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u}}, 0xa4093822u, 0x299f31d0u);
  EXPECT_EQ(r.v[0], 0xd16cfe09u);
  EXPECT_EQ(r.v[1], 0x94fdccebu);
  EXPECT_EQ(r.v[2], 0x5001e420u);
  EXPECT_EQ(r.v[3], 0x24126ea1u);
}

class SamplerTest : public ::testing::Test {
 protected:
  SamplerTest() : pool_(2) { ctx_.pool = &pool_; }

  // Samples each row of `logits` with its params at its position; no history unless given.
  std::vector<SampledToken> run(std::vector<float> logits, int64_t vocab, std::vector<SamplingParams> params,
                                std::vector<int32_t> positions, std::vector<int32_t> hist_start = {},
                                std::vector<int32_t> hist = {}, std::vector<int32_t> prompt_len = {}) {
    const int64_t m = static_cast<int64_t>(params.size());
    ops::SamplingBatch b{params, positions, hist_start, hist, prompt_len, {}, {}, 0};
    std::vector<SampledToken> out;
    Status st = ops::sample(ctx_, testing::host_f32(logits, {m, vocab}), b, &out);
    EXPECT_TRUE(st.is_ok()) << st.to_string();
    return out;
  }
  SampledToken one(const std::vector<float>& logits, const SamplingParams& p, int32_t position = 0) {
    return run(logits, static_cast<int64_t>(logits.size()), {p}, {position})[0];
  }
  // Which tokens `p` draws over many seeds.
  std::map<int32_t, int> histogram(const std::vector<float>& logits, SamplingParams p, int draws) {
    std::map<int32_t, int> h;
    for (int i = 0; i < draws; ++i) {
      p.seed = static_cast<uint64_t>(i) * 7919u + 1;
      ++h[one(logits, p, i).token];
    }
    return h;
  }

  ThreadPool pool_;
  DeviceContext ctx_;
};

std::vector<float> log_probs(const std::vector<double>& p) {
  std::vector<float> l;
  for (double x : p) l.push_back(static_cast<float>(std::log(x)));
  return l;
}

TEST_F(SamplerTest, GreedyTakesArgmaxLowestIdOnTies) {
  SamplingParams p;
  p.temperature = 0;
  EXPECT_EQ(one({0.1f, 3.0f, -2.0f, 2.9f}, p).token, 1);
  EXPECT_EQ(one({1.0f, 5.0f, 5.0f, 2.0f}, p).token, 1);
}

TEST_F(SamplerTest, SameSeedAndPositionGiveSameTokenInAnyBatch) {
  const int64_t vocab = 50;
  auto row = testing::random_vector(vocab, 1);
  SamplingParams p;
  p.temperature = 1.0f;
  p.seed = 1234;
  const int32_t alone = one(row, p, 17).token;
  // The same row in a batch with others, at another index.
  std::vector<float> batch;
  std::vector<SamplingParams> params;
  std::vector<int32_t> positions;
  for (int i = 0; i < 5; ++i) {
    auto other = i == 3 ? row : testing::random_vector(vocab, 10 + i);
    batch.insert(batch.end(), other.begin(), other.end());
    SamplingParams q = p;
    if (i != 3) q.seed = 99 + i;
    params.push_back(q);
    positions.push_back(i == 3 ? 17 : i);
  }
  EXPECT_EQ(run(batch, vocab, params, positions)[3].token, alone);
  // Different positions draw differently: over 200 positions several tokens appear.
  std::set<int32_t> seen;
  for (int32_t pos = 0; pos < 200; ++pos) seen.insert(one(row, p, pos).token);
  EXPECT_GT(seen.size(), 5u);
}

// Untruncated draws weigh tokens in 16-lane kernels: every instruction set this machine has draws
// the same tokens, over rows with -inf and NaN logits, temperatures and min_p.
TEST_F(SamplerTest, EveryInstructionSetDrawsTheSameTokens) {
  const int64_t vocab = 1003, m = 48;
  std::vector<float> logits = testing::random_vector(static_cast<size_t>(vocab * m), 5);
  std::vector<SamplingParams> params(static_cast<size_t>(m));
  std::vector<int32_t> positions;
  for (int64_t r = 0; r < m; ++r) {
    SamplingParams& p = params[static_cast<size_t>(r)];
    p.temperature = 0.3f + 0.1f * static_cast<float>(r % 15);
    p.min_p = r % 3 == 0 ? 0.05f : 0.0f;
    p.seed = static_cast<uint64_t>(r) * 31 + 7;
    positions.push_back(static_cast<int32_t>(r * 13));
    float* row = logits.data() + r * vocab;
    for (int64_t i = 0; i < vocab; ++i) row[i] *= 4.0f;
    row[r % vocab] = -INFINITY;
    if (r % 4 == 1) row[(r * 7) % vocab] = NAN;
  }
  ops::SamplingBatch b{params, positions, {}, {}, {}, {}, {}, 0};
  const Tensor t = testing::host_f32(logits, {m, vocab});
  std::vector<SampledToken> want;
  ASSERT_TRUE(cpu::sample(ctx_, t, b, &want, cpu::CpuIsa::kScalar).is_ok());
  std::set<int32_t> distinct;
  for (int64_t r = 0; r < m; ++r) {
    const int32_t token = want[static_cast<size_t>(r)].token;
    distinct.insert(token);
    EXPECT_TRUE(token >= 0 && token < vocab);
    EXPECT_TRUE(std::isfinite(logits[static_cast<size_t>(r * vocab + token)])) << "row " << r;  // never -inf or NaN
  }
  EXPECT_GT(distinct.size(), 20u);
  std::vector<cpu::CpuIsa> isas;
  if (cpu::cpu_isa() != cpu::CpuIsa::kScalar) isas.push_back(cpu::CpuIsa::kAvx2);
  if (cpu::cpu_isa() == cpu::CpuIsa::kAvx512) isas.push_back(cpu::CpuIsa::kAvx512);
  for (cpu::CpuIsa isa : isas) {
    std::vector<SampledToken> got;
    ASSERT_TRUE(cpu::sample(ctx_, t, b, &got, isa).is_ok());
    for (int64_t r = 0; r < m; ++r)
      EXPECT_EQ(got[static_cast<size_t>(r)].token, want[static_cast<size_t>(r)].token) << cpu::cpu_isa_name(isa) << " row " << r;
  }
}

TEST_F(SamplerTest, FollowsTheDistribution) {
  SamplingParams p;
  const auto h = histogram(log_probs({0.5, 0.3, 0.2}), p, 6000);
  EXPECT_NEAR(h.at(0) / 6000.0, 0.5, 0.03);
  EXPECT_NEAR(h.at(1) / 6000.0, 0.3, 0.03);
  EXPECT_NEAR(h.at(2) / 6000.0, 0.2, 0.03);
}

TEST_F(SamplerTest, TopKKeepsExactlyTheKBestAndTheirTies) {
  SamplingParams p;
  p.top_k = 2;
  auto h = histogram({1.0f, 3.0f, 0.0f, 2.5f, 2.0f}, p, 400);
  EXPECT_EQ(h.size(), 2u);
  EXPECT_TRUE(h.count(1) && h.count(3));
  h = histogram({1.0f, 3.0f, 2.0f, 2.0f, 0.0f}, p, 400);  // tie at the k-th logit: both stay
  EXPECT_EQ(h.size(), 3u);
  EXPECT_TRUE(h.count(1) && h.count(2) && h.count(3));
}

TEST_F(SamplerTest, TopPKeepsTheSmallestSetReachingP) {
  const auto l = log_probs({0.15, 0.5, 0.05, 0.3});
  SamplingParams p;
  p.top_p = 0.7f;  // 0.5 < 0.7 <= 0.8: tokens 1 and 3
  auto h = histogram(l, p, 400);
  EXPECT_EQ(h.size(), 2u);
  EXPECT_TRUE(h.count(1) && h.count(3));
  p.top_p = 0.9f;  // 0.8 < 0.9 <= 0.95: adds token 0
  h = histogram(l, p, 600);
  EXPECT_EQ(h.size(), 3u);
  EXPECT_FALSE(h.count(2));
  p.top_p = 0.01f;  // always at least the best token
  h = histogram(l, p, 50);
  EXPECT_EQ(h.size(), 1u);
  EXPECT_TRUE(h.count(1));
}

// Top-p over a whole vocabulary sorts only the best-first prefix it needs: the token is the one a
// full sort of every candidate would draw, from prefixes of one token to nearly all of them.
TEST_F(SamplerTest, TopPOverAWholeVocabularyDrawsAsAFullSortWould) {
  const int64_t vocab = 50000;
  for (float scale : {0.5f, 2.0f, 8.0f}) {  // nearly flat to peaked
    const std::vector<float> logits = testing::random_vector(static_cast<size_t>(vocab), 40 + static_cast<uint32_t>(scale), scale);
    for (float top_p : {0.05f, 0.5f, 0.9f, 0.999f}) {
      for (uint64_t seed : {1u, 2u, 3u}) {
        SamplingParams p;
        p.temperature = 0.8f;
        p.top_p = top_p;
        p.min_p = seed == 3 ? 0.01f : 0.0f;
        p.seed = seed;
        // The reference: every candidate sorted best first (higher logit, then lower id).
        std::vector<int32_t> order(static_cast<size_t>(vocab));
        std::iota(order.begin(), order.end(), 0);
        std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
          return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
        });
        const double mx = logits[static_cast<size_t>(order[0])];
        auto weight = [&](int32_t t) { return std::exp((static_cast<double>(logits[t]) - mx) / static_cast<double>(p.temperature)); };
        double total = 0.0;
        for (int32_t t = 0; t < vocab; ++t) total += weight(t);  // in id order, as the sampler sums
        size_t keep = order.size();
        double mass = 0.0;
        for (size_t i = 0; i < order.size(); ++i) {
          mass += weight(order[i]) / total;
          if (mass >= static_cast<double>(top_p)) {
            keep = i + 1;
            break;
          }
        }
        std::vector<int32_t> kept;
        for (size_t i = 0; i < keep; ++i) if (weight(order[i]) >= static_cast<double>(p.min_p)) kept.push_back(order[i]);
        if (kept.empty()) kept.push_back(order[0]);
        double kept_total = 0.0;
        for (int32_t t : kept) kept_total += weight(t);
        const int32_t position = 7;
        const double u = static_cast<double>(philox_uniform(philox_at(seed, position).v[0])) * kept_total;
        int32_t want = kept.back();
        double acc = 0.0;
        for (int32_t t : kept) {
          acc += weight(t);
          if (u < acc) {
            want = t;
            break;
          }
        }
        EXPECT_EQ(one(logits, p, position).token, want) << "scale " << scale << " top_p " << top_p << " seed " << seed
                                                        << " prefix " << keep;
      }
    }
  }
}

TEST_F(SamplerTest, MinPDropsTokensBelowAFractionOfTheBest) {
  const auto l = log_probs({0.15, 0.5, 0.05, 0.3});
  SamplingParams p;
  p.min_p = 0.5f;  // threshold 0.25: tokens 1 (0.5) and 3 (0.3)
  auto h = histogram(l, p, 400);
  EXPECT_EQ(h.size(), 2u);
  EXPECT_TRUE(h.count(1) && h.count(3));
  p.min_p = 0.25f;  // threshold 0.125: adds token 0
  h = histogram(l, p, 600);
  EXPECT_EQ(h.size(), 3u);
  EXPECT_FALSE(h.count(2));
}

TEST_F(SamplerTest, PenaltiesAndBiasWithExactNumbers) {
  // Prompt [0, 1], output [2, 2]. repetition 2 over {0, 1, 2}; presence 0.5 and frequency 0.25
  // over the output (token 2, twice); bias +0.5 on token 3, applied first.
  const std::vector<float> logits = {2.0f, -1.0f, 0.5f, 0.5f};
  SamplingParams p;
  p.temperature = 0;
  p.repetition_penalty = 2.0f;
  p.presence_penalty = 0.5f;
  p.frequency_penalty = 0.25f;
  p.logit_bias = {{3, 0.5f}};
  p.num_logprobs = 4;
  auto r = run(logits, 4, {p}, {4}, {0, 4}, {0, 1, 2, 2}, {2})[0];
  const std::vector<double> expected = {1.0, -2.0, 0.25 - 0.5 - 0.5, 1.0};
  double z = 0;
  for (double e : expected) z += std::exp(e);
  ASSERT_EQ(r.top.size(), 4u);
  EXPECT_EQ(r.token, 0);  // tie between 0 and 3 at 1.0: lowest id
  EXPECT_EQ(r.top[0].token, 0);
  EXPECT_EQ(r.top[1].token, 3);
  EXPECT_EQ(r.top[2].token, 2);
  EXPECT_EQ(r.top[3].token, 1);
  for (const auto& t : r.top) EXPECT_NEAR(t.logprob, expected[static_cast<size_t>(t.token)] - std::log(z), 1e-6);
  EXPECT_NEAR(r.logprob, expected[0] - std::log(z), 1e-6);
}

TEST_F(SamplerTest, LogitBiasCanForceAndForbid) {
  SamplingParams p;
  p.temperature = 0;
  p.logit_bias = {{2, 100.0f}};
  EXPECT_EQ(one({5.0f, 1.0f, 0.0f}, p).token, 2);
  p.temperature = 1.0f;
  p.logit_bias = {{0, -INFINITY}};
  for (int seed = 0; seed < 50; ++seed) {
    p.seed = static_cast<uint64_t>(seed);
    EXPECT_NE(one({5.0f, 1.0f, 0.0f}, p).token, 0);
  }
}

TEST_F(SamplerTest, LogprobsAreBeforeTemperature) {
  const std::vector<float> l = {1.0f, 2.0f, 0.5f};
  double z = 0;
  for (float x : l) z += std::exp(static_cast<double>(x));
  SamplingParams p;
  p.temperature = 0.3f;
  p.num_logprobs = 0;
  p.seed = 5;
  const auto r = one(l, p, 3);
  EXPECT_NEAR(r.logprob, l[static_cast<size_t>(r.token)] - std::log(z), 1e-6);
  EXPECT_TRUE(r.top.empty());
}

TEST_F(SamplerTest, RejectsBadParameters) {
  std::vector<float> l = {1.0f, 2.0f};
  std::vector<SampledToken> out;
  auto check = [&](SamplingParams p, const char* field) {
    std::vector<SamplingParams> ps = {p};
    std::vector<int32_t> pos = {0};
    ops::SamplingBatch b{ps, pos, {}, {}, {}, {}, {}, 0};
    Status st = ops::sample(ctx_, testing::host_f32(l, {1, 2}), b, &out);
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << field;
    EXPECT_NE(st.message().find(field), std::string::npos) << st.message();
  };
  SamplingParams p;
  p.temperature = -1;
  check(p, "temperature");
  p = {};
  p.top_p = 0;
  check(p, "top_p");
  p = {};
  p.logit_bias = {{2, 1.0f}};
  check(p, "logit_bias");
  p = {};
  p.repetition_penalty = 1.5f;  // needs the history, which is missing
  check(p, "history");
  p = {};
  p.num_logprobs = 3;
  check(p, "num_logprobs");
}

}  // namespace
}  // namespace kiln::runtime
