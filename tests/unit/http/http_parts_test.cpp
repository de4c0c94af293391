// Router, errors, auth, CORS, SSE framing, response rendering and the kiln.toml reader.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "kiln/http/auth.h"
#include "kiln/http/cors.h"
#include "kiln/http/errors.h"
#include "kiln/http/openai_response.h"
#include "kiln/http/router.h"
#include "kiln/http/sse.h"
#include "kiln/http/toml_config.h"

namespace kiln::http {
namespace {

using nlohmann::json;

TEST(Router, LiteralRoutesWinAndTheLastParameterTakesTheRest) {
  Router r;
  int hit = 0;
  r.add("GET", "/v1/models", [&](const auto&) { hit = 1; });
  r.add("GET", "/v1/models/{id}", [&](const auto&) { hit = 2; });
  r.add("POST", "/v1/chat/completions", [&](const auto&) { hit = 3; });
  auto a = r.match("GET", "/v1/models");
  ASSERT_EQ(a.kind, RouteMatch::Kind::kFound);
  (*a.handler)(nullptr);
  EXPECT_EQ(hit, 1);
  auto b = r.match("GET", "/v1/models/org/name%2Dx");
  ASSERT_EQ(b.kind, RouteMatch::Kind::kFound);
  EXPECT_EQ(b.params["id"], "org/name-x");
  EXPECT_EQ(b.pattern, "/v1/models/{id}");
  auto c = r.match("GET", "/v1/chat/completions");
  EXPECT_EQ(c.kind, RouteMatch::Kind::kMethodNotAllowed);
  EXPECT_EQ(c.allowed, std::vector<std::string>{"POST"});
  EXPECT_EQ(r.match("GET", "/v1/nothing").kind, RouteMatch::Kind::kNotFound);
  EXPECT_EQ(r.match("GET", "/v1/models/%zz").kind, RouteMatch::Kind::kNotFound);
}

TEST(Errors, EnvelopeAndStatusMapping) {
  ApiError e = invalid_param("top_p", "2 is not in the range [0, 1].");
  json j = json::parse(error_body(e));
  EXPECT_EQ(j["error"]["param"], "top_p");
  EXPECT_EQ(j["error"]["type"], "invalid_request_error");
  EXPECT_EQ(j["error"]["code"], "invalid_value");
  EXPECT_TRUE(json::parse(error_body(error_with_status(500, "x")))["error"]["param"].is_null());
  EXPECT_EQ(api_error_from_status(not_found("m")).status, 404);
  EXPECT_EQ(api_error_from_status(invalid_argument("m")).status, 400);
  EXPECT_EQ(api_error_from_status(internal_error("m")).status, 500);
  ApiError busy = api_error_from_status(unavailable("queue full (retry after 3 s)"));
  EXPECT_EQ(busy.status, 503);
  EXPECT_EQ(busy.retry_after_seconds, 3);
  HttpResponse r = error_response(busy);
  ASSERT_EQ(r.headers.size(), 1u);
  EXPECT_EQ(r.headers[0].first, "Retry-After");
  // A prompt refused against the context while it was tokenized (tokenize_prompt).
  ApiError long_chat = api_error_from_status(too_long("This model's maximum context length is 8 tokens."), "messages");
  EXPECT_EQ(long_chat.status, 400);
  EXPECT_EQ(long_chat.code, "context_length_exceeded");
  EXPECT_EQ(long_chat.param, "messages");
  EXPECT_EQ(long_chat.message, "This model's maximum context length is 8 tokens.");
  // Invalid UTF-8 in a message never makes the body invalid JSON.
  EXPECT_NO_THROW(json::parse(error_body(error_with_status(400, "bad \xff byte"))));
}

HttpRequest with_headers(Headers h) {
  HttpRequest r;
  r.method = "GET";
  r.path = "/v1/models";
  r.headers = std::move(h);
  return r;
}

TEST(Auth, BearerKeysAreCheckedAgainstEveryKey) {
  ApiKeys keys({"alpha", " beta "});
  EXPECT_TRUE(keys.enabled());
  EXPECT_FALSE(keys.check(with_headers({{"authorization", "Bearer alpha"}})).has_value());
  EXPECT_FALSE(keys.check(with_headers({{"authorization", "bearer beta"}})).has_value());
  auto missing = keys.check(with_headers({}));
  ASSERT_TRUE(missing.has_value());
  EXPECT_EQ(missing->status, 401);
  auto wrong = keys.check(with_headers({{"authorization", "Bearer alph"}}));
  ASSERT_TRUE(wrong.has_value());
  EXPECT_EQ(wrong->code, "invalid_api_key");
  EXPECT_FALSE(ApiKeys().check(with_headers({})).has_value());
  // Anthropic's clients send the key as x-api-key; a bearer token, when given, is the one checked.
  EXPECT_FALSE(keys.check(with_headers({{"x-api-key", "alpha"}})).has_value());
  EXPECT_TRUE(keys.check(with_headers({{"x-api-key", "alph"}})).has_value());
  EXPECT_TRUE(keys.check(with_headers({{"authorization", "Bearer nope"}, {"x-api-key", "alpha"}})).has_value());
  EXPECT_EQ(rename_field("stop[2]", "stop", "stop_sequences"), "stop_sequences[2]");
  EXPECT_EQ(rename_field("stop_token_ids", "stop", "stop_sequences"), "stop_token_ids");
  EXPECT_EQ(rename_param(invalid_param("stop", "bad."), "stop", "stop_sequences").message, "Invalid value for 'stop_sequences': bad.");
  EXPECT_TRUE(constant_time_equal("abc", "abc"));
  EXPECT_FALSE(constant_time_equal("abc", "abd"));
  EXPECT_FALSE(constant_time_equal("abc", "abcd"));
  EXPECT_FALSE(constant_time_equal("", "a"));
}

TEST(Cors, OffByDefaultAndOnlyForListedOrigins) {
  HttpRequest r = with_headers({{"origin", "https://a.example"}});
  EXPECT_TRUE(Cors().response_headers(r).empty());
  Cors c({"https://a.example/"});
  auto h = c.response_headers(r);
  ASSERT_FALSE(h.empty());
  EXPECT_EQ(h[0].second, "https://a.example");
  EXPECT_TRUE(c.response_headers(with_headers({{"origin", "https://b.example"}})).empty());
  HttpRequest pre = with_headers({{"origin", "https://a.example"}, {"access-control-request-method", "POST"}});
  pre.method = "OPTIONS";
  EXPECT_TRUE(c.is_preflight(pre));
  EXPECT_EQ(c.preflight_response(pre).status, 204);
  EXPECT_EQ(Cors({"*"}).response_headers(with_headers({{"origin", "https://z"}}))[0].second, "*");
}

TEST(Sse, Framing) {
  EXPECT_EQ(sse_data("{\"a\":1}"), "data: {\"a\":1}\n\n");
  EXPECT_EQ(sse_data("a\nb"), "data: a\ndata: b\n\n");
  EXPECT_EQ(sse_comment("x\ny"), ": xy\n\n");
  EXPECT_EQ(sse_done(), "data: [DONE]\n\n");
}

TEST(Render, ChatChunksAndCompletionLogprobsHaveOpenAisShape) {
  const ChunkRenderer& chat = chat_renderer();
  const ChunkRenderer& completion = completion_renderer();
  ResponseMeta meta{"chatcmpl-1", 100, "m", "fp"};
  json a = json::parse(chat.opening_chunk(meta, 0, nullptr, true).value());
  EXPECT_EQ(a["object"], "chat.completion.chunk");
  EXPECT_EQ(a["choices"][0]["delta"], json({{"role", "assistant"}, {"content", ""}}));
  EXPECT_TRUE(a["choices"][0]["finish_reason"].is_null());
  EXPECT_TRUE(a.contains("usage") && a["usage"].is_null());
  ChoiceDelta fin;
  fin.finish_reason = "length";
  json b = json::parse(chat.chunk(meta, fin, false));
  EXPECT_EQ(b["choices"][0]["delta"], json::object());
  EXPECT_FALSE(b.contains("usage"));
  json u = json::parse(chat.usage_chunk(meta, {5, 3, 2}));
  EXPECT_EQ(u["choices"], json::array());
  EXPECT_EQ(u["usage"]["total_tokens"], 8);
  EXPECT_EQ(u["usage"]["prompt_tokens_details"]["cached_tokens"], 2);

  ChoiceOutput c;
  c.text = "ab";
  c.with_logprobs = true;
  c.text_offset = 10;
  c.logprobs = {{"a", -0.5f, {{"a", -0.5f}, {"b", -1.0f}}}, {"b", -2.0f, {}}};
  json d = json::parse(completion.response({"cmpl-1", 1, "m", "fp"}, {c}, {1, 2, 0}));
  const json& lp = d["choices"][0]["logprobs"];
  EXPECT_EQ(lp["tokens"], json::array({"a", "b"}));
  EXPECT_EQ(lp["text_offset"], json::array({10, 11}));
  EXPECT_EQ(lp["top_logprobs"][0]["b"], -1.0);
  EXPECT_EQ(d["object"], "text_completion");

  json e = json::parse(chat.response(meta, {c}, {1, 2, 0}));
  EXPECT_EQ(e["object"], "chat.completion");
  EXPECT_EQ(e["choices"][0]["message"]["content"], "ab");
  EXPECT_EQ(e["choices"][0]["logprobs"]["content"][0]["bytes"], json::array({97}));
  EXPECT_EQ(e["choices"][0]["logprobs"]["content"][0]["top_logprobs"].size(), 2u);
}

// The exact bytes of each kind of chunk, so that a change of shape cannot pass unnoticed.
TEST(Render, ChunksAreByteExact) {
  const ChunkRenderer& chat = chat_renderer();
  const ChunkRenderer& completion = completion_renderer();
  ResponseMeta meta{"id-1", 7, "m", "fp"};
  const std::string head_chat = R"({"id":"id-1","object":"chat.completion.chunk","created":7,"model":"m","system_fingerprint":"fp",)";
  const std::string head_text = R"({"id":"id-1","object":"text_completion","created":7,"model":"m","system_fingerprint":"fp",)";
  EXPECT_EQ(chat.opening_chunk(meta, 1, nullptr, false).value(),
            head_chat + R"("choices":[{"index":1,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]})");
  EXPECT_EQ(completion.opening_chunk(meta, 1, nullptr, false), std::nullopt);
  const std::string echo = "Hi";
  EXPECT_EQ(completion.opening_chunk(meta, 1, &echo, true).value(),
            head_text + R"("choices":[{"index":1,"text":"Hi","logprobs":null,"finish_reason":null}],"usage":null})");
  ChoiceDelta d;
  d.index = 2;
  d.text = "x";
  d.with_logprobs = true;
  d.text_offset = 3;
  d.logprobs = {{"x", -1.0f, {{"y", -0.5f}}}};
  EXPECT_EQ(chat.chunk(meta, d, false),
            head_chat + R"("choices":[{"index":2,"delta":{"content":"x"},"logprobs":{"content":[{"token":"x","logprob":-1.0,)"
                        R"("bytes":[120],"top_logprobs":[{"token":"y","logprob":-0.5,"bytes":[121]}]}],"refusal":null},)"
                        R"("finish_reason":null}]})");
  EXPECT_EQ(completion.chunk(meta, d, false),
            head_text + R"("choices":[{"index":2,"text":"x","logprobs":{"tokens":["x"],"token_logprobs":[-1.0],)"
                        R"("top_logprobs":[{"y":-0.5}],"text_offset":[3]},"finish_reason":null}]})");
  ChoiceDelta end;
  end.index = 2;
  end.finish_reason = "stop";
  end.text_offset = 4;
  EXPECT_EQ(chat.chunk(meta, end, true),
            head_chat + R"("choices":[{"index":2,"delta":{},"logprobs":null,"finish_reason":"stop"}],"usage":null})");
  EXPECT_EQ(completion.chunk(meta, end, true),
            head_text + R"("choices":[{"index":2,"text":"","logprobs":null,"finish_reason":"stop"}],"usage":null})");
}

TEST(Render, ContextLengthErrorsUseEachEndpointsWords) {
  ApiError c = chat_renderer().context_length_error(256, 300, std::nullopt);
  EXPECT_EQ(c.message, "This model's maximum context length is 256 tokens. However, your messages resulted in 300 tokens. "
                       "Please reduce the length of the messages.");
  EXPECT_EQ(c.param, "messages");
  EXPECT_EQ(c.code, "context_length_exceeded");
  ApiError p = completion_renderer().context_length_error(256, 10, 1000);
  EXPECT_EQ(p.message, "This model's maximum context length is 256 tokens. However, you requested 1010 tokens (10 in your "
                       "prompt; 1000 for the completion). Please reduce the length of the prompt or completion.");
  EXPECT_EQ(p.param, "prompt");
  EXPECT_EQ(chat_renderer().context_length_error(256, 10, 1000).message,
            "This model's maximum context length is 256 tokens. However, you requested 1010 tokens (10 in the messages, "
            "1000 in the completion). Please reduce the length of the messages or completion.");
}

TEST(Toml, SubsetValuesTablesAndErrors) {
  auto r = parse_toml(
      "# kiln settings\nport = 9000\nhost = \"0.0.0.0\" # comment\n[serve]\napi_key = ['a', \"b\",]\n"
      "no_prefix_cache = true\nread_timeout = 1.5\nmax_body_size = \"1_000\"\n",
      "kiln.toml");
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  EXPECT_EQ(r->at("port").items[0], "9000");
  EXPECT_EQ(r->at("host").items[0], "0.0.0.0");
  EXPECT_EQ(r->at("serve.api_key").items, (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(r->at("serve.api_key").is_array);
  EXPECT_EQ(r->at("serve.no_prefix_cache").items[0], "true");
  EXPECT_EQ(r->at("serve.read_timeout").items[0], "1.5");
  auto bad = parse_toml("port = 1\nhost = localhost\n", "kiln.toml");
  ASSERT_FALSE(bad.is_ok());
  EXPECT_NE(bad.status().message().find("kiln.toml:2"), std::string::npos);
  EXPECT_FALSE(parse_toml("a = 1\na = 2\n", "f").is_ok());
  EXPECT_FALSE(parse_toml("a = \"open\n", "f").is_ok());
  EXPECT_FALSE(parse_toml("a = [1, 2\n", "f").is_ok());
}

}  // namespace
}  // namespace kiln::http
