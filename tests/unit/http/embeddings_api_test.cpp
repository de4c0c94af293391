#include "kiln/http/embeddings_api.h"

#include <gtest/gtest.h>

#include <cstring>

#include <nlohmann/json.hpp>

#include "kiln/http/rerank_api.h"

namespace kiln::http {
namespace {

TEST(EmbeddingsApi, Base64MatchesRfc4648) {
  auto enc = [](std::string_view s) {
    return base64_encode(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(s.data()), s.size()));
  };
  EXPECT_EQ(enc(""), "");
  EXPECT_EQ(enc("f"), "Zg==");
  EXPECT_EQ(enc("fo"), "Zm8=");
  EXPECT_EQ(enc("foo"), "Zm9v");
  EXPECT_EQ(enc("foobar"), "Zm9vYmFy");
  EXPECT_EQ(enc(std::string_view("\xff\xfe\x00", 3)), "//4A");
}

TEST(EmbeddingsApi, ParsesEveryInputForm) {
  EmbeddingsRequest r;
  ASSERT_FALSE(parse_embeddings_request(R"({"model":"m","input":"hi"})", &r));
  ASSERT_EQ(r.inputs.size(), 1u);
  EXPECT_EQ(r.inputs[0].text, "hi");
  EXPECT_FALSE(r.base64);
  r = {};
  ASSERT_FALSE(parse_embeddings_request(R"({"model":"m","input":["a","b"],"encoding_format":"base64","dimensions":8})", &r));
  EXPECT_EQ(r.inputs.size(), 2u);
  EXPECT_TRUE(r.base64);
  EXPECT_EQ(r.dimensions, 8);
  r = {};
  ASSERT_FALSE(parse_embeddings_request(R"({"model":"m","input":[1,2,3]})", &r));
  ASSERT_EQ(r.inputs.size(), 1u);
  EXPECT_TRUE(r.inputs[0].is_tokens);
  EXPECT_EQ(r.inputs[0].tokens, (std::vector<int64_t>{1, 2, 3}));
  r = {};
  ASSERT_FALSE(parse_embeddings_request(R"({"model":"m","input":[[1],[2,3]]})", &r));
  EXPECT_EQ(r.inputs.size(), 2u);
}

TEST(EmbeddingsApi, RefusesBadRequestsNamingTheField) {
  const std::pair<const char*, const char*> cases[] = {
      {R"({"input":"a"})", "model"},
      {R"({"model":"m"})", "input"},
      {R"({"model":"m","input":""})", "input"},
      {R"({"model":"m","input":["a",""]})", "input[1]"},
      {R"({"model":"m","input":[]})", "input"},
      {R"({"model":"m","input":[[]]})", "input[0]"},
      {R"({"model":"m","input":{"a":1}})", "input"},
      {R"({"model":"m","input":"a","encoding_format":"int8"})", "encoding_format"},
      {R"({"model":"m","input":"a","dimensions":0})", "dimensions"},
      {R"({"model":"m","input":"a","dimensions":"8"})", "dimensions"},
  };
  for (const auto& [body, param] : cases) {
    EmbeddingsRequest r;
    auto e = parse_embeddings_request(body, &r);
    ASSERT_TRUE(e) << body;
    EXPECT_EQ(e->status, 400) << body;
    EXPECT_EQ(e->param, param) << body;
  }
  std::string many = R"({"model":"m","input":[)";
  for (size_t i = 0; i <= kMaxEmbeddingInputs; ++i) many += i ? ",\"a\"" : "\"a\"";
  many += "]}";
  EmbeddingsRequest r;
  auto e = parse_embeddings_request(many, &r);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->param, "input");
}

TEST(EmbeddingsApi, RendersFloatsAndBase64) {
  const std::vector<std::vector<float>> v = {{1.0f, -0.5f}, {0.25f, 2.0f}};
  auto j = nlohmann::json::parse(render_embeddings(v, false, "m", 7));
  EXPECT_EQ(j["object"], "list");
  EXPECT_EQ(j["model"], "m");
  EXPECT_EQ(j["usage"]["prompt_tokens"], 7);
  EXPECT_EQ(j["usage"]["total_tokens"], 7);
  EXPECT_EQ(j["data"][1]["index"], 1);
  EXPECT_EQ(j["data"][1]["embedding"][1].get<double>(), 2.0);
  j = nlohmann::json::parse(render_embeddings(v, true, "m", 7));
  uint8_t bytes[8];
  std::memcpy(bytes, v[0].data(), 8);
  EXPECT_EQ(j["data"][0]["embedding"], base64_encode(bytes));
}

TEST(RerankApi, ParsesDocumentsAndPairs) {
  RerankRequest r;
  ASSERT_FALSE(parse_rerank_request(R"({"model":"m","query":"q","documents":["a",{"text":"b"}],"top_n":1})", &r));
  EXPECT_EQ(r.documents, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(r.top_n, 1);
  EXPECT_TRUE(r.return_documents);
  ScoreRequest s;
  ASSERT_FALSE(parse_score_request(R"({"model":"m","text_1":"q","text_2":["a","b"]})", &s));
  ASSERT_EQ(s.pairs.size(), 2u);
  EXPECT_EQ(s.pairs[1].query, "q");
  EXPECT_EQ(s.pairs[1].document, "b");
  s = {};
  ASSERT_FALSE(parse_score_request(R"({"model":"m","text_1":["q1","q2"],"text_2":["a","b"]})", &s));
  EXPECT_EQ(s.pairs[1].query, "q2");
  s = {};
  auto e = parse_score_request(R"({"model":"m","text_1":["q1","q2"],"text_2":["a","b","c"]})", &s);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->param, "text_1");
}

TEST(RerankApi, RendersBestFirstCutToTopN) {
  RerankRequest r;
  r.documents = {"a", "b", "c"};
  r.top_n = 2;
  auto j = nlohmann::json::parse(render_rerank(r, {0.1, 0.9, 0.9}, "m", 30));
  ASSERT_EQ(j["results"].size(), 2u);
  EXPECT_EQ(j["results"][0]["index"], 1);  // ties keep the lower index first
  EXPECT_EQ(j["results"][1]["index"], 2);
  EXPECT_EQ(j["results"][0]["document"]["text"], "b");
  EXPECT_EQ(j["usage"]["total_tokens"], 30);
  r.return_documents = false;
  j = nlohmann::json::parse(render_rerank(r, {0.1, 0.9, 0.9}, "m", 30));
  EXPECT_FALSE(j["results"][0].contains("document"));
}

}  // namespace
}  // namespace kiln::http
