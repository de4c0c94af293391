#include "kiln/model/model_kind.h"

#include <gtest/gtest.h>

namespace kiln::model {
namespace {

constexpr const char* kModules =
    R"([{"idx":0,"name":"0","path":"","type":"sentence_transformers.models.Transformer"},
        {"idx":1,"name":"1","path":"1_Pooling","type":"sentence_transformers.models.Pooling"},
        {"idx":2,"name":"2","path":"2_Normalize","type":"sentence_transformers.models.Normalize"}])";
constexpr const char* kConfig = R"({"model_type":"qwen3","architectures":["Qwen3ForCausalLM"]})";

TEST(ModelKind, PlainCheckpointsGenerate) {
  auto t = parse_model_task("", "", kConfig);
  ASSERT_TRUE(t.is_ok());
  EXPECT_EQ(t->kind, ModelKind::kGenerate);
}

TEST(ModelKind, SentenceTransformersPoolingMakesAnEmbedder) {
  auto t = parse_model_task(kModules, R"({"pooling_mode_lasttoken":true,"pooling_mode_mean_tokens":false})", kConfig);
  ASSERT_TRUE(t.is_ok()) << t.status().to_string();
  EXPECT_EQ(t->kind, ModelKind::kEmbed);
  EXPECT_EQ(t->pooling, Pooling::kLastToken);
  EXPECT_TRUE(t->normalize);
  const char* no_normalize = R"([{"path":"1_Pooling","type":"sentence_transformers.models.Pooling"}])";
  t = parse_model_task(no_normalize, R"({"pooling_mode_mean_tokens":true})", kConfig);
  ASSERT_TRUE(t.is_ok());
  EXPECT_EQ(t->pooling, Pooling::kMean);
  EXPECT_FALSE(t->normalize);
}

TEST(ModelKind, UnsupportedPoolingIsAnErrorNamingTheField) {
  auto t = parse_model_task(kModules, R"({"pooling_mode_cls_token":true})", kConfig);
  ASSERT_FALSE(t.is_ok());
  EXPECT_NE(t.status().message().find("pooling_mode_cls_token"), std::string::npos);
  t = parse_model_task(kModules, R"({"pooling_mode_lasttoken":true,"pooling_mode_mean_tokens":true})", kConfig);
  EXPECT_FALSE(t.is_ok());
  t = parse_model_task(kModules, "", kConfig);  // modules.json names a Pooling config that is missing
  EXPECT_FALSE(t.is_ok());
  t = parse_model_task("{", "", kConfig);
  EXPECT_FALSE(t.is_ok());
}

TEST(ModelKind, ClassifierFromTokenMakesAReranker) {
  auto t = parse_model_task(
      "", "",
      R"({"model_type":"qwen3","architectures":["Qwen3ForSequenceClassification"],"classifier_from_token":["no","yes"]})");
  ASSERT_TRUE(t.is_ok()) << t.status().to_string();
  EXPECT_EQ(t->kind, ModelKind::kRerank);
  EXPECT_EQ(t->yes_token, "yes");
  EXPECT_EQ(t->no_token, "no");
  // A classification head of its own is not supported: said so, not served as a generator.
  t = parse_model_task("", "", R"({"model_type":"qwen3","architectures":["Qwen3ForSequenceClassification"]})");
  ASSERT_FALSE(t.is_ok());
  EXPECT_EQ(t.status().code(), StatusCode::kUnimplemented);
}

TEST(ModelKind, NamesRoundTrip) {
  for (ModelKind k : {ModelKind::kGenerate, ModelKind::kEmbed, ModelKind::kRerank}) {
    ModelKind back = ModelKind::kGenerate;
    ASSERT_TRUE(parse_model_kind(model_kind_name(k), &back));
    EXPECT_EQ(back, k);
  }
  ModelKind k;
  EXPECT_FALSE(parse_model_kind("classify", &k));
}

}  // namespace
}  // namespace kiln::model
