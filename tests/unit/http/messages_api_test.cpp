// Anthropic's Messages API: requests translated into the chat request they mean (and parsed by
// the chat parser, as the server does), answers and streams rendered in Anthropic's shapes.
#include "kiln/http/messages_api.h"

#include <gtest/gtest.h>

#include "kiln/http/openai_request.h"

namespace kiln::http {
namespace {

Json translate(const std::string& body, bool count_only = false) {
  Json chat;
  auto e = messages_to_chat(Json::parse(body), count_only, &chat);
  EXPECT_FALSE(e.has_value()) << (e ? e->message : "");
  return chat;
}

ApiError error_of(const std::string& body) {
  Json chat;
  auto e = messages_to_chat(Json::parse(body), false, &chat);
  if (!e) {
    ChatRequest req;
    e = parse_chat_body(chat, &req);
    if (e) e = messages_error(*e);
  }
  EXPECT_TRUE(e.has_value()) << body;
  return e.value_or(ApiError{});
}

// The SSE events of a stream as (name, data) pairs.
std::vector<std::pair<std::string, Json>> events(const std::string& sse) {
  std::vector<std::pair<std::string, Json>> out;
  size_t at = 0;
  while (at < sse.size()) {
    size_t end = sse.find("\n\n", at);
    std::string ev = sse.substr(at, end - at);
    at = end + 2;
    size_t nl = ev.find('\n');
    EXPECT_EQ(ev.rfind("event: ", 0), 0u) << ev;
    EXPECT_EQ(ev.compare(nl + 1, 6, "data: "), 0) << ev;
    out.emplace_back(ev.substr(7, nl - 7), Json::parse(ev.substr(nl + 7)));
  }
  return out;
}

TEST(MessagesApi, TranslatesAConversationWithToolsAndThinking) {
  Json chat = translate(R"({"model":"m","max_tokens":64,"stop_sequences":["END"],"temperature":0.5,"top_p":0.9,"top_k":20,
    "system":[{"type":"text","text":"be brief"},{"type":"text","text":"and kind"}],
    "messages":[
      {"role":"user","content":"weather?"},
      {"role":"assistant","content":[{"type":"thinking","thinking":"call it","signature":"x"},{"type":"text","text":"let me look"},
        {"type":"tool_use","id":"toolu_1","name":"get_weather","input":{"city":"Paris"}}]},
      {"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","content":[{"type":"text","text":"sunny"}]},
        {"type":"text","text":"thanks"}]}],
    "tools":[{"name":"get_weather","description":"d","input_schema":{"type":"object","properties":{"city":{"type":"string"}}}}],
    "tool_choice":{"type":"any","disable_parallel_tool_use":true},
    "thinking":{"type":"enabled","budget_tokens":2000}})");
  const Json& m = chat["messages"];
  ASSERT_EQ(m.size(), 5u);
  EXPECT_EQ(m[0], Json({{"role", "system"}, {"content", "be brief\nand kind"}}));
  EXPECT_EQ(m[1]["role"], "user");
  EXPECT_EQ(m[2]["content"], "let me look");
  EXPECT_EQ(m[2]["reasoning_content"], "call it");
  EXPECT_EQ(m[2]["tool_calls"][0]["function"]["arguments"], R"({"city":"Paris"})");
  EXPECT_EQ(m[3], Json({{"role", "tool"}, {"tool_call_id", "toolu_1"}, {"content", "sunny"}}));
  EXPECT_EQ(m[4], Json({{"role", "user"}, {"content", "thanks"}}));
  EXPECT_EQ(chat["stop"], Json::array({"END"}));
  EXPECT_EQ(chat["reasoning_effort"], "low");

  ChatRequest req;
  ASSERT_FALSE(parse_chat_body(chat, &req).has_value());
  EXPECT_EQ(req.tool.choice, ToolChoice::kRequired);
  EXPECT_FALSE(req.tool.parallel_tool_calls);
  EXPECT_EQ(req.params.max_tokens, 64);
  EXPECT_EQ(req.params.top_k, 20);
  EXPECT_EQ(req.params.stop, std::vector<std::string>{"END"});
}

TEST(MessagesApi, ToolChoiceAndThinkingVariants) {
  const std::string head = R"({"model":"m","max_tokens":8,"messages":[{"role":"user","content":"x"}],
    "tools":[{"name":"f","input_schema":{"type":"object"}}],)";
  ChatRequest named;
  ASSERT_FALSE(parse_chat_body(translate(head + R"("tool_choice":{"type":"tool","name":"f"}})"), &named));
  EXPECT_EQ(named.tool.choice, ToolChoice::kNamed);
  EXPECT_EQ(named.tool.named, "f");
  EXPECT_EQ(translate(head + R"("tool_choice":{"type":"none"}})")["tool_choice"], "none");
  EXPECT_EQ(translate(head + R"("thinking":{"type":"disabled"}})")["reasoning_effort"], "none");
  EXPECT_EQ(translate(head + R"("thinking":{"type":"enabled","budget_tokens":50000}})")["reasoning_effort"], "high");
  // count_tokens needs no max_tokens.
  EXPECT_FALSE(translate(R"({"model":"m","messages":[{"role":"user","content":"x"}]})", true).contains("max_tokens"));
}

TEST(MessagesApi, BadRequestsAreRefusedNamingTheField) {
  EXPECT_EQ(error_of(R"({"model":"m","messages":[{"role":"user","content":"x"}]})").param, "max_tokens");
  ApiError img = error_of(R"({"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"type":"image","source":{}}]}]})");
  EXPECT_EQ(img.param, "messages[0].content[0].type");
  EXPECT_EQ(img.code, "unsupported_content_type");
  ApiError server_tool = error_of(R"({"model":"m","max_tokens":5,"messages":[{"role":"user","content":"x"}],
    "tools":[{"type":"web_search_20250305","name":"web_search"}]})");
  EXPECT_EQ(server_tool.param, "tools[0].type");
  EXPECT_EQ(error_of(R"({"model":"m","max_tokens":5,"messages":[{"role":"user","content":"x"}],"tool_choice":{"type":"maybe"}})").param,
            "tool_choice.type");
  EXPECT_EQ(error_of(R"({"model":"m","max_tokens":5,"messages":[{"role":"system","content":"x"}]})").param, "messages[0].role");
  EXPECT_EQ(error_of(R"({"model":"m","max_tokens":5,"messages":[{"role":"user","content":"x"}],"thinking":{"type":"enabled","budget_tokens":10}})").param,
            "thinking.budget_tokens");
  // Errors the chat parser finds are named as the client named the field.
  ApiError mt = error_of(R"({"model":"m","max_tokens":0,"messages":[{"role":"user","content":"x"}]})");
  EXPECT_EQ(mt.param, "max_tokens");
  ApiError st = error_of(R"({"model":"m","max_tokens":3,"stop_sequences":[""],"messages":[{"role":"user","content":"x"}]})");
  EXPECT_EQ(st.param, "stop_sequences");
}

TEST(MessagesApi, ErrorsUseAnthropicsEnvelopeAndTypes) {
  ApiError e = error_with_status(529, "busy");
  HttpResponse r = anthropic_error_format().response(e);
  EXPECT_EQ(r.status, 529);
  EXPECT_EQ(Json::parse(r.body), Json::parse(R"({"type":"error","error":{"type":"overloaded_error","message":"busy"}})"));
  EXPECT_STREQ(anthropic_error_type(400), "invalid_request_error");
  EXPECT_STREQ(anthropic_error_type(401), "authentication_error");
  EXPECT_STREQ(anthropic_error_type(404), "not_found_error");
  EXPECT_STREQ(anthropic_error_type(429), "rate_limit_error");
  EXPECT_STREQ(anthropic_error_type(500), "api_error");
  auto ev = events(anthropic_error_format().stream_event(invalid_param("x", "bad")));
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].first, "error");
  EXPECT_EQ(ev[0].second["error"]["type"], "invalid_request_error");
}

TEST(MessagesApi, RendersAMessageWithEachKindOfBlock) {
  ResponseMeta meta{"msg_1", 7, "m", "fp", 12};
  ChoiceOutput c;
  c.text = "sure";
  c.reasoning = "hmm";
  c.tool_calls = {{"call_1", "f", R"({"a":1})"}};
  c.finish_reason = "tool_calls";
  Json m = Json::parse(messages_renderer().response(meta, {c}, {12, 5, 0, 0}));
  EXPECT_EQ(m, Json::parse(R"({"id":"msg_1","type":"message","role":"assistant","model":"m","content":[
      {"type":"thinking","thinking":"hmm","signature":""},{"type":"text","text":"sure"},
      {"type":"tool_use","id":"call_1","name":"f","input":{"a":1}}],
    "stop_reason":"tool_use","stop_sequence":null,"usage":{"input_tokens":12,"output_tokens":5}})"));
  ChoiceOutput s;
  s.text = "a";
  s.finish_reason = "stop";
  s.stop_sequence = "END";
  Json stopped = Json::parse(messages_renderer().response(meta, {s}, {}));
  EXPECT_EQ(stopped["stop_reason"], "stop_sequence");
  EXPECT_EQ(stopped["stop_sequence"], "END");
  s.stop_sequence.clear();
  EXPECT_EQ(Json::parse(messages_renderer().response(meta, {s}, {}))["stop_reason"], "end_turn");
  s.finish_reason = "length";
  EXPECT_EQ(Json::parse(messages_renderer().response(meta, {s}, {}))["stop_reason"], "max_tokens");
}

TEST(MessagesApi, StreamsBlocksInAnthropicsOrder) {
  ResponseMeta meta{"msg_1", 7, "m", "fp", 12};
  auto w = messages_renderer().stream_writer(meta, false);
  std::string sse = w->open(0, nullptr);
  ChoiceDelta think;
  think.reasoning = "hm";
  sse += w->delta(think);
  ChoiceDelta text;
  text.text = "hi";
  sse += w->delta(text);
  sse += w->delta(text);
  ChoiceDelta call;
  call.tool_calls = {{0, true, "call_1", "f", ""}, {0, false, "", "", "{\"a\":"}};
  sse += w->delta(call);
  ChoiceDelta more;
  more.tool_calls = {{0, false, "", "", "1}"}};
  sse += w->delta(more);
  ChoiceDelta fin;
  fin.finish_reason = "tool_calls";
  sse += w->delta(fin);
  sse += w->end({12, 9, 0, 0});
  auto ev = events(sse);
  std::vector<std::string> names;
  for (const auto& [n, d] : ev) {
    names.push_back(n);
    EXPECT_EQ(d["type"], n);
  }
  EXPECT_EQ(names, (std::vector<std::string>{"message_start", "ping",
      "content_block_start", "content_block_delta", "content_block_stop",
      "content_block_start", "content_block_delta", "content_block_delta", "content_block_stop",
      "content_block_start", "content_block_delta", "content_block_delta", "content_block_stop",
      "message_delta", "message_stop"}));
  EXPECT_EQ(ev[0].second["message"]["usage"]["input_tokens"], 12);
  EXPECT_EQ(ev[2].second["content_block"]["type"], "thinking");
  EXPECT_EQ(ev[3].second["delta"], Json({{"type", "thinking_delta"}, {"thinking", "hm"}}));
  EXPECT_EQ(ev[5].second["index"], 1);
  EXPECT_EQ(ev[6].second["delta"], Json({{"type", "text_delta"}, {"text", "hi"}}));
  EXPECT_EQ(ev[9].second["content_block"], Json::parse(R"({"type":"tool_use","id":"call_1","name":"f","input":{}})"));
  EXPECT_EQ(ev[10].second["delta"], Json({{"type", "input_json_delta"}, {"partial_json", "{\"a\":"}}));
  EXPECT_EQ(ev[12].second["index"], 2);
  EXPECT_EQ(ev[13].second["delta"]["stop_reason"], "tool_use");
  EXPECT_EQ(ev[13].second["usage"]["output_tokens"], 9);
}

}  // namespace
}  // namespace kiln::http
