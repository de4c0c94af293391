#include "kiln/core/status.h"

#include <gtest/gtest.h>

#include "kiln/core/dtype.h"
#include "kiln/core/str.h"

namespace kiln {
namespace {

Result<int> half(int x) {
  if (x % 2) return invalid_argument(str_cat("odd: ", x));
  return x / 2;
}

Result<int> quarter(int x) {
  KILN_ASSIGN_OR_RETURN(int h, half(x));
  return half(h);
}

TEST(Status, ResultCarriesValueOrError) {
  auto r = quarter(8);
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(*r, 2);
  auto e = quarter(6);
  ASSERT_FALSE(e.is_ok());
  EXPECT_EQ(e.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(e.status().message(), "odd: 3");
  EXPECT_EQ(e.status().with_context("quarter").to_string(), "invalid_argument: quarter: odd: 3");
}

TEST(Status, ParamNamesTheRejectedFieldAndSurvivesContext) {
  Status s = invalid_argument("n: must be between 1 and 4, got 9").with_param("n");
  EXPECT_EQ(s.param(), "n");
  EXPECT_EQ(s.message(), "n: must be between 1 and 4, got 9");
  EXPECT_EQ(s.with_context("model m").param(), "n");
  EXPECT_EQ(invalid_argument("x").param(), "");
  EXPECT_EQ(Status::ok().with_param("n").param(), "");  // an ok status names nothing
}

TEST(DType, Bf16RoundsToNearestEven) {
  EXPECT_EQ(bf16_to_f32(f32_to_bf16(1.0f)), 1.0f);
  // 1 + 2^-8 is halfway between two bf16 values; ties go to the even one (1.0).
  EXPECT_EQ(bf16_to_f32(f32_to_bf16(1.0f + 1.0f / 256)), 1.0f);
  EXPECT_EQ(bf16_to_f32(f32_to_bf16(1.0f + 3.0f / 256)), 1.0f + 4.0f / 256);
  for (float f : {0.0f, -2.5f, 65504.0f, 6.1035156e-05f, 5.9604645e-08f}) EXPECT_EQ(f16_to_f32(f32_to_f16(f)), f);
}

TEST(Str, ParsesBytesAndValidatesUtf8) {
  long long b = 0;
  ASSERT_TRUE(parse_bytes("1.5GiB", &b));
  EXPECT_EQ(b, 1610612736LL);
  EXPECT_FALSE(parse_bytes("12 parsecs", &b));
  EXPECT_TRUE(is_valid_utf8("h\xC3\xA9llo \xF0\x9F\x98\x80"));
  EXPECT_FALSE(is_valid_utf8("\xC3"));
  EXPECT_FALSE(is_valid_utf8("\xED\xA0\x80"));  // a surrogate
  EXPECT_FALSE(is_valid_utf8("\xC0\xAF"));      // overlong
}

}  // namespace
}  // namespace kiln
