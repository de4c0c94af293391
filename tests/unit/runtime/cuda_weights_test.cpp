// Weight loading on the GPU: upload_matrix through the pinned staging (F32, F16 and BF16 parts
// stacked, several staging chunks long) against the host conversion, and a tied lm_head that
// shares the embedding table instead of holding a second copy.
#include <gtest/gtest.h>

#include <cstdlib>

#include "cuda_test_util.h"
#include "engine_test_util.h"
#include "kiln/runtime/engine.h"
#include "kiln/runtime/weights.h"

namespace kiln::runtime {
namespace {

class CudaWeightsTest : public testing::CudaTest {};

TEST_F(CudaWeightsTest, UploadMatrixStacksMixedDtypesAcrossStagingChunks) {
  // 4,600 x 4,096 elements: more than two 8 Mi-element staging chunks, with part boundaries inside
  // chunks.
  const int64_t cols = 4096;
  const int64_t rows_f32 = 1500, rows_f16 = 2100, rows_bf16 = 1000;
  std::mt19937 rng(7);
  std::normal_distribution<float> dist(0.0f, 3.0f);
  std::vector<float> f32(static_cast<size_t>(rows_f32 * cols));
  for (float& x : f32) x = dist(rng);
  std::vector<uint16_t> f16(static_cast<size_t>(rows_f16 * cols)), bf16(static_cast<size_t>(rows_bf16 * cols));
  for (uint16_t& x : f16) x = static_cast<uint16_t>(rng() & 0x7bff);  // finite halves of both signs
  for (uint16_t& x : bf16) x = f32_to_bf16(dist(rng));
  const HostMatrix parts[] = {{f32.data(), DType::kF32, rows_f32, cols, "a"},
                              {f16.data(), DType::kF16, rows_f16, cols, "b"},
                              {bf16.data(), DType::kBF16, rows_bf16, cols, "c"}};
  auto buf = upload_matrix(gpu_, parts, DType::kBF16);
  ASSERT_TRUE(buf.is_ok()) << buf.status().to_string();
  ASSERT_EQ(buf->tensor().dim(0), rows_f32 + rows_f16 + rows_bf16);
  std::vector<uint16_t> got(static_cast<size_t>(buf->tensor().numel()));
  ASSERT_TRUE(copy_to_host(gpu_, buf->tensor(), got.data()).is_ok());
  ASSERT_TRUE(synchronize(gpu_).is_ok());
  size_t at = 0, bad = 0;
  for (float x : f32) bad += got[at++] != f32_to_bf16(x);
  for (uint16_t x : f16) bad += got[at++] != f32_to_bf16(f16_to_f32(x));
  for (uint16_t x : bf16) bad += got[at++] != x;
  EXPECT_EQ(bad, 0u);
}

TEST_F(CudaWeightsTest, UploadMatrixRejectsMismatchedColumns) {
  std::vector<float> a(8), b(9);
  const HostMatrix parts[] = {{a.data(), DType::kF32, 2, 4, "first"}, {b.data(), DType::kF32, 3, 3, "second"}};
  auto buf = upload_matrix(gpu_, parts, DType::kBF16);
  ASSERT_FALSE(buf.is_ok());
  EXPECT_NE(buf.status().message().find("second"), std::string::npos) << buf.status().to_string();
}

// Weight memory of a model on the device, its parameter count and its embedding table size.
struct Footprint {
  int64_t weights_bytes, parameters, table_bytes;
};

Footprint footprint(const std::string& preset) {
  const auto dir = testing::tiny_model(preset, 11, 4096);
  EngineOptions o;
  o.device = DeviceKind::kCuda;
  o.kv_cache_bytes = 16 << 20;
  o.max_model_len = 256;
  o.max_batched_tokens = 256;
  o.max_seqs = 4;
  auto e = Engine::load(dir, o);
  EXPECT_TRUE(e.is_ok()) << e.status().to_string();
  if (!e.is_ok()) return {};
  const model::ModelConfig& c = (*e)->config();
  return {(*e)->memory_usage().weights_bytes, c.num_parameters(), c.vocab_size * c.hidden_size * 2};
}

TEST_F(CudaWeightsTest, TiedLmHeadSharesTheEmbeddingTable) {
  // qwen3 ties lm_head to embed_tokens; llama's tiny preset has its own lm_head. Parameters count a
  // tied matrix once, so bf16 weights take about 2 bytes a parameter either way (plus the rope
  // table and norms), and a second copy of the table would show as table_bytes more.
  for (const char* preset : {"tiny-qwen3", "tiny-llama"}) {
    const Footprint f = footprint(preset);
    ASSERT_GT(f.parameters, 0) << preset;
    EXPECT_GE(f.weights_bytes, 2 * f.parameters) << preset;
    EXPECT_LT(f.weights_bytes - 2 * f.parameters, f.table_bytes / 2) << preset;
  }
}

}  // namespace
}  // namespace kiln::runtime
