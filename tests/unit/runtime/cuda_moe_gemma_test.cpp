// The CUDA kernels of the mixture-of-experts and Gemma 3 ops against the CPU ops: outputs poisoned
// first, every element checked, routing and permutation exactly, the rest to bf16 tolerances.
// (cuda_engine_test.cpp holds the whole CUDA engine to the CPU engine on the tiny presets of these
// architectures.) Skips without a GPU.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "cuda_test_util.h"
#include "kiln/runtime/ops/moe.h"
#include "kiln/runtime/ops/pointwise.h"

namespace kiln::runtime {
namespace {

using testing::random_bf16;

class CudaMoeGemmaOpsTest : public testing::CudaTest {
 protected:
  Buffer upload_ids(const std::vector<int32_t>& v, int64_t rows, int64_t cols) {
    auto b = Buffer::allocate(gpu_.device, DType::kI32, {rows, cols});
    EXPECT_TRUE(b.is_ok());
    EXPECT_TRUE(copy_to_device(gpu_, v.data(), b->tensor()).is_ok());
    EXPECT_TRUE(synchronize(gpu_).is_ok());
    return std::move(b).value();
  }
  std::vector<int32_t> download_i32(const Tensor& t) {
    std::vector<int32_t> out(static_cast<size_t>(t.numel()));
    EXPECT_TRUE(copy_to_host(gpu_, t, out.data()).is_ok());
    EXPECT_TRUE(synchronize(gpu_).is_ok());
    return out;
  }
};

Tensor host(std::vector<float>& v, std::initializer_list<int64_t> shape) {
  return Tensor(v.data(), DType::kF32, Device::cpu(), shape);
}
Tensor host_i32(std::vector<int32_t>& v, std::initializer_list<int64_t> shape) {
  return Tensor(v.data(), DType::kI32, Device::cpu(), shape);
}

TEST_F(CudaMoeGemmaOpsTest, GegluMatchesCpu) {
  uint32_t seed = 1;
  for (auto [n, inter] : std::vector<std::pair<int64_t, int64_t>>{{1, 32}, {7, 100}, {33, 2048}}) {
    std::vector<float> gu = random_bf16(static_cast<size_t>(n * 2 * inter), seed++, 2.0f);
    std::vector<float> want(static_cast<size_t>(n * inter));
    ASSERT_TRUE(ops::geglu(cpu_, host(gu, {n, 2 * inter}), host(want, {n, inter})).is_ok());
    Buffer g = upload(gu, DType::kBF16, {n, 2 * inter});
    Buffer out = poisoned(DType::kBF16, {n, inter});
    const Status st = ops::geglu(gpu_, g.tensor(), out.tensor());
    ASSERT_TRUE(st.is_ok()) << st.to_string();
    testing::expect_close(download(out.tensor()), want, 1e-2, 1e-2, str_cat("geglu n=", n, " I=", inter));
  }
}

TEST_F(CudaMoeGemmaOpsTest, ScaleSoftcapAndAddIntoMatchCpu) {
  uint32_t seed = 20;
  for (auto [n, m] : std::vector<std::pair<int64_t, int64_t>>{{1, 64}, {5, 1152}, {3, 7}}) {
    const std::string what = str_cat(" n=", n, " m=", m);
    std::vector<float> x = random_bf16(static_cast<size_t>(n * m), seed++, 3.0f);
    std::vector<float> y = random_bf16(static_cast<size_t>(n * m), seed++, 3.0f);

    std::vector<float> scaled = x;
    ASSERT_TRUE(ops::scale(cpu_, host(scaled, {n, m}), 33.94f).is_ok());
    Buffer xs = upload(x, DType::kBF16, {n, m});
    ASSERT_TRUE(ops::scale(gpu_, xs.tensor(), 33.94f).is_ok());
    testing::expect_close(download(xs.tensor()), scaled, 1e-3, 1e-2, "scale" + what);

    std::vector<float> capped = x;  // f32 logits
    ASSERT_TRUE(ops::tanh_softcap(cpu_, host(capped, {n, m}), 2.0f).is_ok());
    Buffer xc = upload(x, DType::kF32, {n, m});
    ASSERT_TRUE(ops::tanh_softcap(gpu_, xc.tensor(), 2.0f).is_ok());
    testing::expect_close(download(xc.tensor()), capped, 1e-6, 1e-5, "tanh_softcap" + what);

    std::vector<float> sum = y;
    ASSERT_TRUE(ops::add_into(cpu_, host(x, {n, m}), host(sum, {n, m})).is_ok());
    Buffer xa = upload(x, DType::kBF16, {n, m});
    Buffer ya = upload(y, DType::kBF16, {n, m});
    ASSERT_TRUE(ops::add_into(gpu_, xa.tensor(), ya.tensor()).is_ok());
    testing::expect_close(download(ya.tensor()), sum, 1e-3, 1e-2, "add_into" + what);
  }
}

// Ids exactly (ties included: logits drawn from a few values), weights to f32 rounding; 2000
// experts leave room for fewer tokens a block (the probabilities sit in shared memory).
TEST_F(CudaMoeGemmaOpsTest, RouteMatchesCpuIncludingTies) {
  uint32_t seed = 40;
  for (auto [n, e, k] : std::vector<std::tuple<int64_t, int64_t, int64_t>>{
           {1, 8, 2}, {9, 8, 3}, {17, 60, 4}, {300, 128, 8}, {5, 4, 4}, {40, 40, 1}, {13, 2000, 8}}) {
    for (const bool ties : {false, true}) {
      for (const bool normalize : {false, true}) {
        const std::string what = str_cat(" n=", n, " E=", e, " k=", k, ties ? " ties" : "", normalize ? " normalised" : "");
        std::vector<float> logits = random_bf16(static_cast<size_t>(n * e), seed++, 2.0f);
        if (ties)
          for (float& l : logits) l = std::round(l);  // a handful of values: many equal probabilities
        std::vector<int32_t> want_ids(static_cast<size_t>(n * k));
        std::vector<float> want_w(static_cast<size_t>(n * k));
        const ops::MoeRouting r{e, k, normalize};
        ASSERT_TRUE(ops::moe_route(cpu_, host(logits, {n, e}), r, host_i32(want_ids, {n, k}), host(want_w, {n, k})).is_ok());
        Buffer lb = upload(logits, DType::kBF16, {n, e});
        Buffer ids = poisoned(DType::kI32, {n, k});
        Buffer w = poisoned(DType::kF32, {n, k});
        const Status st = ops::moe_route(gpu_, lb.tensor(), r, ids.tensor(), w.tensor());
        ASSERT_TRUE(st.is_ok()) << st.to_string();
        EXPECT_EQ(download_i32(ids.tensor()), want_ids) << what;
        testing::expect_close(download(w.tensor()), want_w, 1e-6, 1e-5, "moe_route weights" + what);
      }
    }
  }
}

// moe_route_permute: every output exactly as the CPU's moe_route then moe_permute (weights to f32
// rounding), through the fused kernel (up to 64 tokens) and past it (65 tokens; 2000 experts,
// whose probabilities do not fit its shared memory).
TEST_F(CudaMoeGemmaOpsTest, RoutePermuteMatchesCpuRouteThenPermute) {
  uint32_t seed = 90;
  for (auto [n, e, k] : std::vector<std::tuple<int64_t, int64_t, int64_t>>{
           {1, 128, 8}, {1, 8, 2}, {3, 60, 4}, {64, 128, 8}, {65, 128, 8}, {40, 40, 40}, {13, 2000, 8}, {33, 8, 8}}) {
    for (const bool ties : {false, true}) {
      const std::string what = str_cat(" n=", n, " E=", e, " k=", k, ties ? " ties" : "");
      std::vector<float> logits = random_bf16(static_cast<size_t>(n * e), seed++, 2.0f);
      if (ties)
        for (float& l : logits) l = std::round(l);
      const int64_t pairs = n * k;
      std::vector<int32_t> ids(static_cast<size_t>(pairs)), start(static_cast<size_t>(e + 1)),
          tokens(static_cast<size_t>(pairs)), rows(static_cast<size_t>(pairs));
      std::vector<float> w(static_cast<size_t>(pairs));
      const ops::MoeRouting r{e, k, true};
      ASSERT_TRUE(ops::moe_route_permute(cpu_, host(logits, {n, e}), r, host_i32(ids, {n, k}), host(w, {n, k}),
                                         host_i32(start, {e + 1}), host_i32(tokens, {pairs}), host_i32(rows, {pairs}))
                      .is_ok());
      Buffer lb = upload(logits, DType::kBF16, {n, e});
      Buffer gi = poisoned(DType::kI32, {n, k});
      Buffer gw = poisoned(DType::kF32, {n, k});
      Buffer gs = poisoned(DType::kI32, {e + 1});
      Buffer gt = poisoned(DType::kI32, {pairs});
      Buffer gr = poisoned(DType::kI32, {pairs});
      const Status st = ops::moe_route_permute(gpu_, lb.tensor(), r, gi.tensor(), gw.tensor(), gs.tensor(), gt.tensor(),
                                               gr.tensor());
      ASSERT_TRUE(st.is_ok()) << st.to_string();
      EXPECT_EQ(download_i32(gi.tensor()), ids) << what;
      testing::expect_close(download(gw.tensor()), w, 1e-6, 1e-5, "moe_route_permute weights" + what);
      EXPECT_EQ(download_i32(gs.tensor()), start) << what;
      EXPECT_EQ(download_i32(gt.tensor()), tokens) << what;
      EXPECT_EQ(download_i32(gr.tensor()), rows) << what;
    }
  }
}

// expert_start, sorted_tokens and pair_row exactly as the CPU's stable counting sort, for skewed
// routing (every pair to one expert, most experts empty), random routing across the kernel's
// 4096-pair chunks, and duplicate ids within a token.
TEST_F(CudaMoeGemmaOpsTest, PermuteMatchesCpuWithSkewedAndEmptyExperts) {
  struct Case {
    std::string name;
    int64_t n, k, e;
    std::vector<int32_t> ids;
  };
  std::vector<Case> cases;
  cases.push_back({"all to expert 2", 5, 1, 4, {2, 2, 2, 2, 2}});
  cases.push_back({"all to experts 5 and 2", 700, 2, 8, {}});
  for (int64_t t = 0; t < 700; ++t) cases.back().ids.insert(cases.back().ids.end(), {5, 2});
  cases.push_back({"5000 tokens to the last expert", 5000, 1, 128, std::vector<int32_t>(5000, 127)});
  cases.push_back({"one token", 1, 8, 128, {3, 9, 100, 0, 127, 64, 65, 1}});
  std::mt19937 rng(3);
  for (auto [n, k, e, spread] : std::vector<std::tuple<int64_t, int64_t, int64_t, int64_t>>{
           {11, 3, 6, 6}, {1000, 8, 128, 128}, {777, 2, 8, 3}, {64, 4, 60, 60}}) {
    Case c{str_cat("random n=", n, " k=", k, " E=", e, " over ", spread), n, k, e, {}};
    for (int64_t t = 0; t < n; ++t) {
      std::vector<int32_t> experts(static_cast<size_t>(spread));
      std::iota(experts.begin(), experts.end(), 0);
      std::shuffle(experts.begin(), experts.end(), rng);
      for (int64_t j = 0; j < k; ++j) c.ids.push_back(experts[static_cast<size_t>(j % spread)]);
    }
    cases.push_back(std::move(c));
  }
  for (Case& c : cases) {
    const int64_t pairs = c.n * c.k;
    std::vector<int32_t> start(static_cast<size_t>(c.e + 1)), tokens(static_cast<size_t>(pairs)),
        rows(static_cast<size_t>(pairs));
    ASSERT_TRUE(ops::moe_permute(cpu_, host_i32(c.ids, {c.n, c.k}), c.e, host_i32(start, {c.e + 1}),
                                 host_i32(tokens, {pairs}), host_i32(rows, {pairs}))
                    .is_ok());
    Buffer ids = upload_ids(c.ids, c.n, c.k);
    Buffer gs = poisoned(DType::kI32, {c.e + 1});
    Buffer gt = poisoned(DType::kI32, {pairs});
    Buffer gr = poisoned(DType::kI32, {pairs});
    const Status st = ops::moe_permute(gpu_, ids.tensor(), c.e, gs.tensor(), gt.tensor(), gr.tensor());
    ASSERT_TRUE(st.is_ok()) << st.to_string();
    EXPECT_EQ(download_i32(gs.tensor()), start) << c.name;
    EXPECT_EQ(download_i32(gt.tensor()), tokens) << c.name;
    EXPECT_EQ(download_i32(gr.tensor()), rows) << c.name;
  }
}

// Widths with one, several and partial column blocks, 16-byte and scalar loads (H not a multiple
// of 8).
TEST_F(CudaMoeGemmaOpsTest, CombineMatchesCpu) {
  uint32_t seed = 70;
  std::mt19937 rng(11);
  for (auto [n, k, e, h] : std::vector<std::tuple<int64_t, int64_t, int64_t, int64_t>>{
           {1, 2, 8, 64}, {13, 3, 8, 100}, {70, 8, 128, 2048}, {3, 8, 128, 4104}, {2, 2, 8, 4100}}) {
    const std::string what = str_cat("moe_combine n=", n, " k=", k, " H=", h);
    std::vector<int32_t> ids;
    for (int64_t t = 0; t < n; ++t) {
      std::vector<int32_t> experts(static_cast<size_t>(e));
      std::iota(experts.begin(), experts.end(), 0);
      std::shuffle(experts.begin(), experts.end(), rng);
      ids.insert(ids.end(), experts.begin(), experts.begin() + k);
    }
    std::vector<int32_t> start(static_cast<size_t>(e + 1)), tokens(static_cast<size_t>(n * k)),
        rows(static_cast<size_t>(n * k));
    ASSERT_TRUE(ops::moe_permute(cpu_, host_i32(ids, {n, k}), e, host_i32(start, {e + 1}), host_i32(tokens, {n * k}),
                                 host_i32(rows, {n * k}))
                    .is_ok());
    std::vector<float> y = random_bf16(static_cast<size_t>(n * k * h), seed++);
    std::vector<float> w(static_cast<size_t>(n * k));
    std::uniform_real_distribution<float> unit(0.0f, 1.0f);
    for (float& v : w) v = unit(rng);
    std::vector<float> out0 = random_bf16(static_cast<size_t>(n * h), seed++, 4.0f), want = out0;
    ASSERT_TRUE(ops::moe_combine(cpu_, host(y, {n * k, h}), host_i32(rows, {n * k}), host(w, {n, k}), host(want, {n, h}))
                    .is_ok());
    Buffer yb = upload(y, DType::kBF16, {n * k, h});
    Buffer rb = upload_i32(rows);
    Buffer wb = upload(w, DType::kF32, {n, k});
    Buffer ob = upload(out0, DType::kBF16, {n, h});
    const Status st = ops::moe_combine(gpu_, yb.tensor(), rb.tensor(), wb.tensor(), ob.tensor());
    ASSERT_TRUE(st.is_ok()) << st.to_string();
    testing::expect_close(download(ob.tensor()), want, 2e-2, 1e-2, what);
  }
}

}  // namespace
}  // namespace kiln::runtime
