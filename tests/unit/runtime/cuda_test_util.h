// Helpers for the GPU tests: a CUDA context that skips the test where there is no device, bf16
// uploads of f32 data, poisoned outputs, downloads, and element-by-element comparison.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "kiln/core/dtype.h"
#include "kiln/core/str.h"
#include "kiln/runtime/backend/cuda/device.h"
#include "kiln/runtime/buffer.h"
#include "kiln/runtime/device_context.h"

namespace kiln::runtime::testing {

// Rounds every element to bf16, so that CPU and GPU see the same input values.
inline std::vector<float> bf16_round(std::vector<float> v) {
  for (float& x : v) x = bf16_to_f32(f32_to_bf16(x));
  return v;
}

inline std::vector<float> random_bf16(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = bf16_to_f32(f32_to_bf16(dist(rng)));
  return v;
}

class CudaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device";
    auto d = cuda::CudaDevice::open(0);
    ASSERT_TRUE(d.is_ok()) << d.status().to_string();
    dev_ = std::move(d).value();
    gpu_.device = Device::cuda(0);
    gpu_.stream = dev_->stream();
    gpu_.blas = dev_->lt_handle();
    cpu_.device = Device::cpu();
  }

  // A device tensor of `dtype` holding `v` (f32 values, narrowed to bf16 when dtype is BF16).
  Buffer upload(const std::vector<float>& v, DType dtype, std::vector<int64_t> shape) {
    auto b = Buffer::allocate(gpu_.device, dtype, std::move(shape));
    EXPECT_TRUE(b.is_ok()) << b.status().to_string();
    if (dtype == DType::kBF16) {
      std::vector<uint16_t> h(v.size());
      for (size_t i = 0; i < v.size(); ++i) h[i] = f32_to_bf16(v[i]);
      EXPECT_TRUE(copy_to_device(gpu_, h.data(), b->tensor()).is_ok());
    } else {
      EXPECT_TRUE(copy_to_device(gpu_, v.data(), b->tensor()).is_ok());
    }
    EXPECT_TRUE(synchronize(gpu_).is_ok());
    return std::move(b).value();
  }
  Buffer upload_i32(const std::vector<int32_t>& v) {
    auto b = Buffer::allocate(gpu_.device, DType::kI32, {static_cast<int64_t>(v.size())});
    EXPECT_TRUE(b.is_ok());
    EXPECT_TRUE(copy_to_device(gpu_, v.data(), b->tensor()).is_ok());
    EXPECT_TRUE(synchronize(gpu_).is_ok());
    return std::move(b).value();
  }
  // Uninitialised device memory filled with all-ones bytes: NaN in bf16 and f32.
  Buffer poisoned(DType dtype, std::vector<int64_t> shape) {
    auto b = Buffer::allocate(gpu_.device, dtype, std::move(shape));
    EXPECT_TRUE(b.is_ok());
    EXPECT_TRUE(dev_->fill_bytes(b->tensor().raw(), 0xff, static_cast<size_t>(b->nbytes())).is_ok());
    return std::move(b).value();
  }
  std::vector<float> download(const Tensor& t) {
    EXPECT_TRUE(synchronize(gpu_).is_ok());
    std::vector<float> out(static_cast<size_t>(t.numel()));
    if (t.dtype() == DType::kBF16) {
      std::vector<uint16_t> h(out.size());
      EXPECT_TRUE(copy_to_host(gpu_, t, h.data()).is_ok());
      EXPECT_TRUE(synchronize(gpu_).is_ok());
      for (size_t i = 0; i < h.size(); ++i) out[i] = bf16_to_f32(h[i]);
    } else {
      EXPECT_TRUE(copy_to_host(gpu_, t, out.data()).is_ok());
      EXPECT_TRUE(synchronize(gpu_).is_ok());
    }
    return out;
  }

  std::unique_ptr<cuda::CudaDevice> dev_;
  DeviceContext gpu_;
  DeviceContext cpu_;
};

// Every element: equal, or |got - want| <= atol + rtol * |want|, and never NaN. Reports the first misses.
inline void expect_close(const std::vector<float>& got, const std::vector<float>& want, double atol, double rtol,
                         const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  size_t bad = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double g = got[i], w = want[i];
    // Equal infinities (masked logits) match; their difference would be NaN.
    const bool ok = g == w || (!std::isnan(g) && std::abs(g - w) <= atol + rtol * std::abs(w));
    if (!ok && ++bad <= 5) ADD_FAILURE() << what << ": element " << i << " is " << g << ", want " << w;
  }
  EXPECT_EQ(bad, 0u) << what << ": " << bad << " of " << got.size() << " elements differ";
}

inline double max_abs(const std::vector<float>& v) {
  double m = 0.0;
  for (float x : v) m = std::max(m, static_cast<double>(std::abs(x)));
  return m;
}

}  // namespace kiln::runtime::testing
