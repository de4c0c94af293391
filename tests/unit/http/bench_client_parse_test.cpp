// The load generator's parsers: SSE framing, OpenAI chunks and bodies, base URLs.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "bench_serve/openai_api.h"
#include "bench_serve/sse.h"
#include "bench_serve/target.h"

namespace kiln::bench_serve {
namespace {

using nlohmann::json;

std::vector<SseEvent> feed_all(std::string_view bytes) {
  SseParser p;
  std::vector<SseEvent> out;
  EXPECT_TRUE(p.feed(bytes, &out).is_ok());
  return out;
}

TEST(BenchClientSse, ParsesEventsWhateverTheSplit) {
  const std::string stream =
      "\xEF\xBB\xBF: keep-alive comment\n"
      "data: {\"a\":1}\n\n"
      "event: error\r\ndata: line one\r\ndata:line two\r\n\r\n"
      "data: x\r\rdata: [DONE]\n\n";
  // Every way of cutting the stream in two gives the same events.
  for (size_t cut = 0; cut <= stream.size(); ++cut) {
    SseParser p;
    std::vector<SseEvent> events;
    ASSERT_TRUE(p.feed(std::string_view(stream).substr(0, cut), &events).is_ok());
    ASSERT_TRUE(p.feed(std::string_view(stream).substr(cut), &events).is_ok());
    ASSERT_EQ(events.size(), 4u) << "cut at " << cut;
    EXPECT_EQ(events[0].data, "{\"a\":1}");
    EXPECT_EQ(events[0].event, "");
    EXPECT_EQ(events[1].event, "error");
    EXPECT_EQ(events[1].data, "line one\nline two");
    EXPECT_EQ(events[2].data, "x");
    EXPECT_EQ(events[3].data, "[DONE]");
    EXPECT_FALSE(p.has_pending_event());
  }
  // And byte by byte.
  SseParser p;
  std::vector<SseEvent> events;
  for (char c : stream) ASSERT_TRUE(p.feed(std::string_view(&c, 1), &events).is_ok());
  EXPECT_EQ(events.size(), 4u);
}

TEST(BenchClientSse, EventWithoutBlankLineIsPending) {
  SseParser p;
  std::vector<SseEvent> events;
  ASSERT_TRUE(p.feed("data: a\n\ndata: b\n", &events).is_ok());
  ASSERT_EQ(events.size(), 1u);
  EXPECT_TRUE(p.has_pending_event());
  // Comment-only and field-less blocks dispatch nothing.
  EXPECT_TRUE(feed_all(": ping\n\nretry: 10\n\n").empty());
  // An empty data line is still an event (with empty data).
  auto ev = feed_all("data:\n\n");
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].data, "");
}

TEST(BenchClientApi, ReadsChatChunks) {
  auto role = parse_stream_chunk(R"({"choices":[{"index":0,"delta":{"role":"assistant"}}]})", ApiEndpoint::kChat);
  ASSERT_TRUE(role.is_ok());
  EXPECT_EQ(role->text, "");
  auto content = parse_stream_chunk(R"({"choices":[{"delta":{"content":"Hi"},"finish_reason":null}]})",
                                    ApiEndpoint::kChat);
  ASSERT_TRUE(content.is_ok());
  EXPECT_EQ(content->text, "Hi");
  auto reasoning = parse_stream_chunk(R"({"choices":[{"delta":{"content":null,"reasoning_content":"hmm"}}]})",
                                      ApiEndpoint::kChat);
  ASSERT_TRUE(reasoning.is_ok());
  EXPECT_EQ(reasoning->text, "hmm");
  auto last = parse_stream_chunk(R"({"choices":[{"delta":{},"finish_reason":"length"}]})", ApiEndpoint::kChat);
  ASSERT_TRUE(last.is_ok());
  EXPECT_EQ(last->finish_reason, "length");
  auto usage = parse_stream_chunk(R"({"choices":[],"usage":{"prompt_tokens":12,"completion_tokens":34}})",
                                  ApiEndpoint::kChat);
  ASSERT_TRUE(usage.is_ok());
  EXPECT_EQ(usage->prompt_tokens, 12);
  EXPECT_EQ(usage->completion_tokens, 34);
  auto usage_only = parse_stream_chunk(R"({"usage":{"prompt_tokens":1,"completion_tokens":2}})", ApiEndpoint::kChat);
  ASSERT_TRUE(usage_only.is_ok());
  EXPECT_EQ(usage_only->completion_tokens, 2);
}

TEST(BenchClientApi, ReadsCompletionsAndWholeBodies) {
  auto chunk = parse_stream_chunk(R"({"choices":[{"text":" world","index":0}]})", ApiEndpoint::kCompletions);
  ASSERT_TRUE(chunk.is_ok());
  EXPECT_EQ(chunk->text, " world");
  auto body = parse_response_body(
      R"({"choices":[{"message":{"role":"assistant","content":"abc"},"finish_reason":"stop"}],)"
      R"("usage":{"prompt_tokens":5,"completion_tokens":3}})",
      ApiEndpoint::kChat);
  ASSERT_TRUE(body.is_ok());
  EXPECT_EQ(body->text, "abc");
  EXPECT_EQ(body->completion_tokens, 3);
  EXPECT_EQ(body->finish_reason, "stop");
}

TEST(BenchClientApi, ReportsErrorsAndMalformedInput) {
  auto err = parse_stream_chunk(R"({"error":{"message":"KV cache full","type":"server_error"}})", ApiEndpoint::kChat);
  ASSERT_TRUE(err.is_ok());
  EXPECT_EQ(err->error, "KV cache full");
  auto vllm_err = parse_response_body(R"({"object":"error","message":"bad model"})", ApiEndpoint::kChat);
  ASSERT_TRUE(vllm_err.is_ok());
  EXPECT_EQ(vllm_err->error, "bad model");
  auto bad = parse_stream_chunk("{not json", ApiEndpoint::kChat);
  ASSERT_FALSE(bad.is_ok());
  EXPECT_NE(bad.status().message().find("not a JSON object"), std::string::npos);
  EXPECT_FALSE(parse_stream_chunk(R"({"id":"x"})", ApiEndpoint::kChat).is_ok());
  EXPECT_FALSE(parse_response_body(R"({"choices":[1]})", ApiEndpoint::kChat).is_ok());
  EXPECT_EQ(describe_error_body(R"({"error":{"message":"model not found"}})"), "model not found");
  EXPECT_EQ(describe_error_body("  Bad Gateway\n"), "Bad Gateway");
}

TEST(BenchClientApi, BuildsRequestBodies) {
  RequestSpec spec;
  spec.prompt = "the of and";
  spec.max_tokens = 64;
  BodySettings s;
  s.model = "m";
  json chat = json::parse(build_request_body(spec, s));
  EXPECT_EQ(chat["model"], "m");
  EXPECT_EQ(chat["messages"], json::parse(R"([{"role":"user","content":"the of and"}])"));
  EXPECT_EQ(chat["max_tokens"], 64);
  EXPECT_EQ(chat["stream"], true);
  EXPECT_EQ(chat["stream_options"]["include_usage"], true);
  EXPECT_EQ(chat["ignore_eos"], true);
  EXPECT_FALSE(chat.contains("temperature"));

  s.endpoint = ApiEndpoint::kCompletions;
  s.stream = false;
  s.ignore_eos = false;
  s.temperature = 0.0;
  s.extra_body = json{{"top_k", 1}, {"max_tokens", 9}};
  json comp = json::parse(build_request_body(spec, s));
  EXPECT_EQ(comp["prompt"], "the of and");
  EXPECT_FALSE(comp.contains("messages"));
  EXPECT_EQ(comp["stream"], false);
  EXPECT_FALSE(comp.contains("stream_options"));
  EXPECT_FALSE(comp.contains("ignore_eos"));
  EXPECT_EQ(comp["temperature"], 0.0);
  EXPECT_EQ(comp["top_k"], 1);
  EXPECT_EQ(comp["max_tokens"], 9);  // --extra-body wins

  spec.messages = json::parse(R"([{"role":"system","content":"s"},{"role":"user","content":"u"}])");
  s.endpoint = ApiEndpoint::kChat;
  EXPECT_EQ(json::parse(build_request_body(spec, s))["messages"], spec.messages);
}

TEST(BenchClientTarget, ParsesBaseUrls) {
  auto t = parse_base_url("http://127.0.0.1:8000");
  ASSERT_TRUE(t.is_ok());
  EXPECT_EQ(t->host, "127.0.0.1");
  EXPECT_EQ(t->port, "8000");
  EXPECT_EQ(t->host_header, "127.0.0.1:8000");
  EXPECT_EQ(t->path(ApiEndpoint::kChat), "/v1/chat/completions");
  auto v1 = parse_base_url("http://localhost:11434/v1/");
  ASSERT_TRUE(v1.is_ok());
  EXPECT_EQ(v1->path(ApiEndpoint::kCompletions), "/v1/completions");
  auto prefixed = parse_base_url("http://gpu-box/proxy");
  ASSERT_TRUE(prefixed.is_ok());
  EXPECT_EQ(prefixed->port, "80");
  EXPECT_EQ(prefixed->path(ApiEndpoint::kChat), "/proxy/v1/chat/completions");
  auto v6 = parse_base_url("http://[::1]:9000");
  ASSERT_TRUE(v6.is_ok());
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->port, "9000");
  EXPECT_EQ(v6->host_header, "[::1]:9000");

  for (const char* bad : {"https://x", "ftp://x", "http://", "http://:80", "http://h:0", "http://h:99999",
                          "http://h:8a", "http://u:p@h", "http://h/v1?x=1", "http://[::1"}) {
    auto r = parse_base_url(bad);
    EXPECT_FALSE(r.is_ok()) << bad;
    EXPECT_NE(r.status().message().find("--url"), std::string::npos) << bad;
  }
}

}  // namespace
}  // namespace kiln::bench_serve
