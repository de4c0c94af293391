#include "kiln/serve/pooling.h"

#include <gtest/gtest.h>

#include <cmath>

namespace kiln::serve {
namespace {

TEST(Pooling, NormalizeScalesToUnitLengthAndLeavesZeroAlone) {
  std::vector<float> v = {3.0f, 4.0f};
  normalize_l2(v);
  EXPECT_FLOAT_EQ(v[0], 0.6f);
  EXPECT_FLOAT_EQ(v[1], 0.8f);
  std::vector<float> z = {0.0f, 0.0f};
  normalize_l2(z);
  EXPECT_EQ(z, (std::vector<float>{0.0f, 0.0f}));
  // Large values do not overflow: the norm is computed in double.
  std::vector<float> big = {3e30f, 4e30f};
  normalize_l2(big);
  EXPECT_NEAR(big[0], 0.6f, 1e-6);
}

TEST(Pooling, TruncationKeepsTheFirstDimensionsThenRenormalises) {
  auto r = finish_embedding({3.0f, 4.0f, 12.0f}, 2, true);
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->size(), 2u);
  EXPECT_FLOAT_EQ((*r)[0], 0.6f);
  EXPECT_FLOAT_EQ((*r)[1], 0.8f);
  // A model without a Normalize module keeps its raw values.
  r = finish_embedding({3.0f, 4.0f, 12.0f}, 2, false);
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(*r, (std::vector<float>{3.0f, 4.0f}));
  r = finish_embedding({3.0f, 4.0f, 12.0f}, std::nullopt, true);
  ASSERT_TRUE(r.is_ok());
  EXPECT_FLOAT_EQ((*r)[2], 12.0f / 13.0f);
}

TEST(Pooling, TruncationOutsideTheVectorIsRefusedNamingDimensions) {
  for (int64_t d : {0, -1, 4}) {
    auto r = finish_embedding({1.0f, 2.0f, 3.0f}, d, true);
    ASSERT_FALSE(r.is_ok()) << d;
    EXPECT_EQ(r.status().param(), "dimensions");
  }
}

TEST(Pooling, YesProbabilityIsTheSoftmaxOverTheTwoTokens) {
  const std::vector<float> logits = {0.0f, 2.0f, -1.0f, 5.0f};
  auto p = yes_probability(logits, 1, 2);
  ASSERT_TRUE(p.is_ok());
  EXPECT_NEAR(*p, std::exp(2.0) / (std::exp(2.0) + std::exp(-1.0)), 1e-12);
  // Far apart logits neither overflow nor lose the small side.
  const std::vector<float> far = {800.0f, -800.0f};
  EXPECT_NEAR(*yes_probability(far, 0, 1), 1.0, 1e-12);
  EXPECT_GT(*yes_probability(far, 1, 0), 0.0 - 1e-300);
  EXPECT_LT(*yes_probability(far, 1, 0), 1e-300);
  EXPECT_FALSE(yes_probability(logits, 4, 0).is_ok());
  EXPECT_FALSE(yes_probability(logits, 0, -1).is_ok());
}

}  // namespace
}  // namespace kiln::serve
