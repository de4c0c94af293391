// Times the experts' grouped GEMMs alone at Qwen3-30B-A3B's decode shapes (128 experts, top-8,
// hidden 2048, expert width 768): each kernel, and the rows kernel at several grid sizes. The
// routing changes every call among 16 random sets of experts, so the weights come from HBM (16 sets
// of up to 8 x 9.4 MB, far past the L2), as in a real step. A benchmark, not a test: disabled; run
// with --gtest_also_run_disabled_tests --gtest_filter='CudaMoeGemmBench.*'. Prints a table.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <random>
#include <set>

#include "cuda_test_util.h"
#include "kiln/runtime/backend/cuda/kernels.h"
#include "kiln/runtime/backend/cuda/scratch.h"
#include "kiln/runtime/ops/moe.h"

namespace kiln::runtime {
namespace {

class CudaMoeGemmBench : public testing::CudaTest {};

TEST_F(CudaMoeGemmBench, DISABLED_DecodeShapes) {
  constexpr int64_t kE = 128, kTopK = 8, kH = 2048, kI = 768, kSets = 16, kCalls = 64;
  // Every expert's [gate; up] ([2I, H]) and down ([H, I]) weights, one buffer each, small values.
  Buffer gu = poisoned(DType::kBF16, {kE * 2 * kI, kH});
  Buffer dn = poisoned(DType::kBF16, {kE * kH, kI});
  ASSERT_TRUE(dev_->fill_bytes(gu.tensor().raw(), 0x3c, static_cast<size_t>(gu.nbytes())).is_ok());
  ASSERT_TRUE(dev_->fill_bytes(dn.tensor().raw(), 0x3c, static_cast<size_t>(dn.nbytes())).is_ok());
  const auto table = [&](const Buffer& w, int64_t rows, int64_t cols) {
    std::vector<int64_t> addr;
    for (int64_t e = 0; e < kE; ++e)
      addr.push_back(static_cast<int64_t>(reinterpret_cast<uintptr_t>(w.tensor().raw())) + e * rows * cols * 2);
    auto b = Buffer::allocate(gpu_.device, DType::kI64, {kE});
    EXPECT_TRUE(b.is_ok() && copy_to_device(gpu_, addr.data(), b->tensor()).is_ok());
    EXPECT_TRUE(synchronize(gpu_).is_ok());
    return std::move(b).value();
  };
  Buffer gu_table = table(gu, 2 * kI, kH), dn_table = table(dn, kH, kI);
  const auto stream = static_cast<cudaStream_t>(gpu_.stream);
  cudaEvent_t t0, t1;
  ASSERT_EQ(cudaEventCreate(&t0), cudaSuccess);
  ASSERT_EQ(cudaEventCreate(&t1), cudaSuccess);
  std::printf("[moe-gemm] %-5s %-7s %-6s %5s %9s %8s\n", "seqs", "op", "kernel", "bps", "us/call", "GB/s");
  for (const int64_t n : {1, 4, 8, 64}) {
    const int64_t pairs = n * kTopK;
    std::mt19937 rng(static_cast<uint32_t>(n));
    std::vector<Buffer> starts, tokens;
    double experts_read = 0;  // distinct experts a call, on average
    for (int64_t s = 0; s < kSets; ++s) {
      std::vector<int32_t> ids;
      std::set<int32_t> distinct;
      for (int64_t t = 0; t < n; ++t) {
        std::vector<int32_t> all(kE);
        for (int32_t e = 0; e < kE; ++e) all[static_cast<size_t>(e)] = e;
        std::shuffle(all.begin(), all.end(), rng);
        ids.insert(ids.end(), all.begin(), all.begin() + kTopK);
        distinct.insert(all.begin(), all.begin() + kTopK);
      }
      experts_read += static_cast<double>(distinct.size()) / kSets;
      std::vector<int32_t> start(kE + 1), sorted(static_cast<size_t>(pairs)), row(static_cast<size_t>(pairs));
      ASSERT_TRUE(ops::moe_permute(cpu_, Tensor(ids.data(), DType::kI32, Device::cpu(), {n, kTopK}), kE,
                                   Tensor(start.data(), DType::kI32, Device::cpu(), {kE + 1}),
                                   Tensor(sorted.data(), DType::kI32, Device::cpu(), {pairs}),
                                   Tensor(row.data(), DType::kI32, Device::cpu(), {pairs}))
                      .is_ok());
      starts.push_back(upload_i32(start));
      tokens.push_back(upload_i32(sorted));
    }
    Buffer x = upload(testing::random_bf16(static_cast<size_t>(n * kH), 1), DType::kBF16, {n, kH});
    Buffer act = upload(testing::random_bf16(static_cast<size_t>(pairs * kI), 2), DType::kBF16, {pairs, kI});
    Buffer y_act = poisoned(DType::kBF16, {pairs, kI});
    Buffer y_out = poisoned(DType::kBF16, {pairs, kH});
    struct Config {
      const char* name;
      cuda::MoeGemmPath path;
      int bps;
    };
    const Config configs[] = {{"tiles", cuda::MoeGemmPath::kTiles, 0}, {"rows", cuda::MoeGemmPath::kRows, 1},
                              {"rows", cuda::MoeGemmPath::kRows, 2},    {"rows", cuda::MoeGemmPath::kRows, 3},
                              {"rows", cuda::MoeGemmPath::kRows, 4},    {"rows", cuda::MoeGemmPath::kRows, 6},
                              {"rows", cuda::MoeGemmPath::kRows, 8}};
    for (const bool swiglu : {true, false}) {
      for (const Config& c : configs) {
        cuda::MoeGemmArgs g;
        g.x = swiglu ? x.tensor().data<const uint16_t>() : act.tensor().data<const uint16_t>();
        g.x_rows = swiglu ? n : pairs;
        g.rows = pairs;
        g.num_experts = static_cast<int>(kE);
        g.weights = (swiglu ? gu_table : dn_table).tensor().data<const int64_t>();
        g.n = swiglu ? 2 * kI : kH;
        g.k = swiglu ? kH : kI;
        g.swiglu = swiglu;
        g.y = (swiglu ? y_act : y_out).tensor().data<uint16_t>();
        g.max_rows = n;
        g.sm_count = cuda::sm_count(gpu_.device);
        g.rows_blocks_per_sm = c.bps;
        const auto call = [&](int64_t i) {
          g.expert_start = starts[static_cast<size_t>(i % kSets)].tensor().data<const int32_t>();
          g.x_row = swiglu ? tokens[static_cast<size_t>(i % kSets)].tensor().data<const int32_t>() : nullptr;
          return cuda::launch_moe_grouped_gemm(g, c.path, stream);
        };
        for (int64_t i = 0; i < kSets; ++i) ASSERT_TRUE(call(i).is_ok());
        ASSERT_EQ(cudaEventRecord(t0, stream), cudaSuccess);
        for (int64_t i = 0; i < kCalls; ++i) ASSERT_TRUE(call(i).is_ok());
        ASSERT_EQ(cudaEventRecord(t1, stream), cudaSuccess);
        ASSERT_EQ(cudaEventSynchronize(t1), cudaSuccess);
        float ms = 0;
        ASSERT_EQ(cudaEventElapsedTime(&ms, t0, t1), cudaSuccess);
        const double us = 1000.0 * ms / kCalls;
        const double bytes = experts_read * static_cast<double>(g.n * g.k * 2);
        std::printf("[moe-gemm] %-5lld %-7s %-6s %5d %9.2f %8.0f\n", static_cast<long long>(n),
                    swiglu ? "gate/up" : "down", c.name, c.bps, us, bytes / (us * 1e3));
      }
    }
  }
  cudaEventDestroy(t0);
  cudaEventDestroy(t1);
}

}  // namespace
}  // namespace kiln::runtime
