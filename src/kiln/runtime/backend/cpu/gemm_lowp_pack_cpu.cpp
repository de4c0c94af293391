// Packing of bf16 and q8 weights at load, straight from the checkpoint's mapping: no f32 copy of
// the whole matrix is made, and panels are packed in parallel.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "kiln/runtime/backend/cpu/gemm_lowp_cpu.h"
#include "kiln/runtime/backend/cpu/gemm_tiles_cpu.h"

namespace kiln::runtime::cpu {
namespace {

constexpr int64_t kP = kGemmPanel;

struct SourceRow {
  const uint8_t* data = nullptr;  // null: a padding row (zeros)
  DType dtype = DType::kF32;
};

// Row r of the parts stacked along rows, for every r of the padded panels.
std::vector<SourceRow> source_rows(std::span<const HostMatrix> parts, int64_t padded_rows) {
  std::vector<SourceRow> rows;
  rows.reserve(static_cast<size_t>(padded_rows));
  for (const HostMatrix& p : parts) {
    const int64_t row_bytes = p.cols * static_cast<int64_t>(dtype_size(p.dtype));
    for (int64_t r = 0; r < p.rows; ++r)
      rows.push_back({static_cast<const uint8_t*>(p.data) + r * row_bytes, p.dtype});
  }
  rows.resize(static_cast<size_t>(padded_rows));
  return rows;
}

int64_t total_rows(std::span<const HostMatrix> parts) {
  int64_t n = 0;
  for (const HostMatrix& p : parts) n += p.rows;
  return n;
}

// A panel whose kP rows are all bf16 and k even (every real checkpoint's case): a pair (k = 2q,
// 2q+1) is one 32-bit word in a row and one in the panel, so the panel is a [kP, k/2] -> [k/2, kP]
// transpose of words, written in order (sequential stores; the kP source lines stay in L1).
// False when the panel needs the general per-row path.
bool pack_bf16_panel(const SourceRow* rows, int64_t k, uint16_t* dst) {
  if (k % 2 != 0) return false;
  const uint8_t* src[kP];
  for (int64_t j = 0; j < kP; ++j) {
    if (rows[j].data == nullptr || rows[j].dtype != DType::kBF16) return false;
    src[j] = static_cast<const uint8_t*>(rows[j].data);
  }
  auto* out = reinterpret_cast<uint8_t*>(dst);
  for (int64_t q = 0; q < k / 2; ++q) {
    for (int64_t j = 0; j < kP; ++j) std::memcpy(out + (q * kP + j) * 4, src[j] + q * 4, 4);
  }
  return true;
}

}  // namespace

int64_t bf16_packed_size(int64_t n, int64_t k) { return (n + kP - 1) / kP * kP * ((k + 1) / 2 * 2); }

void pack_bf16(const DeviceContext& ctx, std::span<const HostMatrix> parts, int64_t k, uint16_t* packed) {
  const int64_t n = total_rows(parts), panels = (n + kP - 1) / kP, pairs = (k + 1) / 2;
  const std::vector<SourceRow> rows = source_rows(parts, panels * kP);
  parallel_for(ctx, panels, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> widened(static_cast<size_t>(k));
    for (int64_t p = begin; p < end; ++p) {
      uint16_t* dst = packed + p * pairs * kP * 2;
      if (pack_bf16_panel(rows.data() + p * kP, k, dst)) continue;
      for (int64_t j = 0; j < kP; ++j) {
        const SourceRow& src = rows[static_cast<size_t>(p * kP + j)];
        uint16_t* col = dst + j * 2;  // element kk at col[(kk / 2) * kP * 2 + kk % 2]
        if (src.data == nullptr) {
          for (int64_t kk = 0; kk < pairs * 2; ++kk) col[(kk >> 1) * kP * 2 + (kk & 1)] = 0;
          continue;
        }
        if (src.dtype == DType::kBF16) {
          const auto* s = reinterpret_cast<const uint16_t*>(src.data);
          for (int64_t kk = 0; kk < k; ++kk) col[(kk >> 1) * kP * 2 + (kk & 1)] = s[kk];
        } else {
          convert_to_f32(src.data, src.dtype, static_cast<size_t>(k), widened.data());
          for (int64_t kk = 0; kk < k; ++kk) col[(kk >> 1) * kP * 2 + (kk & 1)] = f32_to_bf16(widened[kk]);
        }
        if (k % 2 != 0) col[(k >> 1) * kP * 2 + 1] = 0;
      }
    }
  });
}

int64_t q8_blocks(int64_t k) { return (k + kQ8Block - 1) / kQ8Block; }
int64_t q8_codes_size(int64_t n, int64_t k) { return (n + kP - 1) / kP * kP * q8_blocks(k) * kQ8Block; }
int64_t q8_scales_size(int64_t n, int64_t k) { return (n + kP - 1) / kP * kP * q8_blocks(k); }

void pack_q8(const DeviceContext& ctx, std::span<const HostMatrix> parts, int64_t k, uint8_t* codes,
             uint16_t* scales) {
  const int64_t n = total_rows(parts), panels = (n + kP - 1) / kP, blocks = q8_blocks(k);
  const std::vector<SourceRow> rows = source_rows(parts, panels * kP);
  parallel_for(ctx, panels, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> w(static_cast<size_t>(blocks * kQ8Block));
    for (int64_t p = begin; p < end; ++p) {
      uint8_t* pc = codes + p * blocks * kQ8Block * kP;
      uint16_t* ps = scales + p * blocks * kP;
      for (int64_t j = 0; j < kP; ++j) {
        const SourceRow& src = rows[static_cast<size_t>(p * kP + j)];
        std::fill(w.begin(), w.end(), 0.0f);
        if (src.data != nullptr) convert_to_f32(src.data, src.dtype, static_cast<size_t>(k), w.data());
        for (int64_t b = 0; b < blocks; ++b) {
          const float* wb = w.data() + b * kQ8Block;
          float amax = 0.0f;
          for (int64_t i = 0; i < kQ8Block; ++i) amax = std::max(amax, std::fabs(wb[i]));
          const uint16_t s16 = f32_to_f16(amax / 127.0f);
          const float s = f16_to_f32(s16);
          const float inv = s > 0.0f ? 1.0f / s : 0.0f;
          ps[b * kP + j] = s16;
          // Group g of block b holds k = 4g .. 4g+3 of every output j.
          uint8_t* cb = pc + b * kQ8Block * kP + j * 4;
          for (int64_t i = 0; i < kQ8Block; ++i) {
            const float q = std::clamp(std::nearbyint(wb[i] * inv), -127.0f, 127.0f);
            cb[(i / 4) * kP * 4 + i % 4] = static_cast<uint8_t>(static_cast<int>(q) + 128);
          }
        }
      }
    }
  });
}

}  // namespace kiln::runtime::cpu
