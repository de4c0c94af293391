// OpenAI's Responses API: requests translated into the chat request they mean (and parsed by the
// chat parser, as the server does), answers and streams rendered as response objects and events.
#include "kiln/http/responses_api.h"

#include <gtest/gtest.h>

#include "kiln/http/openai_request.h"

namespace kiln::http {
namespace {

Json translate(const std::string& body) {
  Json chat;
  auto e = responses_to_chat(Json::parse(body), &chat);
  EXPECT_FALSE(e.has_value()) << (e ? e->message : "");
  return chat;
}

ApiError error_of(const std::string& body) {
  Json chat;
  auto e = responses_to_chat(Json::parse(body), &chat);
  if (!e) {
    ChatRequest req;
    e = parse_chat_body(chat, &req);
    if (e) e = responses_error(*e);
  }
  EXPECT_TRUE(e.has_value()) << body;
  return e.value_or(ApiError{});
}

std::vector<std::pair<std::string, Json>> events(const std::string& sse) {
  std::vector<std::pair<std::string, Json>> out;
  size_t at = 0;
  while (at < sse.size()) {
    size_t end = sse.find("\n\n", at);
    std::string ev = sse.substr(at, end - at);
    at = end + 2;
    size_t nl = ev.find('\n');
    out.emplace_back(ev.substr(7, nl - 7), Json::parse(ev.substr(nl + 7)));
  }
  return out;
}

TEST(ResponsesApi, TranslatesInputItemsToolsFormatAndReasoning) {
  Json chat = translate(R"({"model":"m","instructions":"be brief","max_output_tokens":50,"temperature":0.3,"top_p":0.8,
    "input":[
      {"role":"user","content":[{"type":"input_text","text":"weather"},{"type":"input_text","text":"in Paris?"}]},
      {"type":"reasoning","id":"rs_1","summary":[],"content":[{"type":"reasoning_text","text":"call it"}]},
      {"type":"function_call","call_id":"c1","name":"get_weather","arguments":"{\"city\":\"Paris\"}"},
      {"type":"function_call","call_id":"c2","name":"get_weather","arguments":"{\"city\":\"Lyon\"}"},
      {"type":"function_call_output","call_id":"c1","output":"sunny"},
      {"type":"function_call_output","call_id":"c2","output":"rain"},
      {"type":"message","role":"assistant","content":[{"type":"output_text","text":"Sunny and rain."}]},
      {"role":"developer","content":"answer in French"}],
    "tools":[{"type":"function","name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}},"strict":true}],
    "tool_choice":{"type":"function","name":"get_weather"},"parallel_tool_calls":false,
    "text":{"format":{"type":"json_schema","name":"w","schema":{"type":"object"},"strict":true}},
    "reasoning":{"effort":"high"},"store":true})");
  const Json& m = chat["messages"];
  ASSERT_EQ(m.size(), 7u);
  EXPECT_EQ(m[0], Json({{"role", "system"}, {"content", "be brief"}}));
  EXPECT_EQ(m[1], Json({{"role", "user"}, {"content", "weather\nin Paris?"}}));
  EXPECT_EQ(m[2]["role"], "assistant");
  EXPECT_EQ(m[2]["reasoning_content"], "call it");
  ASSERT_EQ(m[2]["tool_calls"].size(), 2u);
  EXPECT_EQ(m[2]["tool_calls"][1]["id"], "c2");
  EXPECT_EQ(m[3], Json({{"role", "tool"}, {"tool_call_id", "c1"}, {"content", "sunny"}}));
  EXPECT_EQ(m[5], Json({{"role", "assistant"}, {"content", "Sunny and rain."}}));
  EXPECT_EQ(m[6]["role"], "developer");
  EXPECT_EQ(chat["response_format"]["json_schema"]["name"], "w");

  ChatRequest req;
  ASSERT_FALSE(parse_chat_body(chat, &req).has_value());
  rename_chat_fields(&req);
  EXPECT_EQ(req.params.max_tokens, 50);
  EXPECT_EQ(req.tool.choice, ToolChoice::kNamed);
  EXPECT_FALSE(req.tool.parallel_tool_calls);
  EXPECT_TRUE(req.tool.tools[0].strict);
  EXPECT_EQ(req.reasoning_effort, "high");
  ASSERT_TRUE(req.params.structured.has_value());
  EXPECT_EQ(req.params.structured->param, "text.format.schema");  // a schema that does not compile names it

  Json plain = translate(R"({"model":"m","input":"hello"})");
  EXPECT_EQ(plain["messages"], Json::parse(R"([{"role":"user","content":"hello"}])"));
}

TEST(ResponsesApi, RefusesWhatKilnCannotHonour) {
  // previous_response_id and background are the handler's (the store's): the translation
  // refuses only the server-side state kiln never keeps.
  ApiError conv = error_of(R"({"model":"m","input":"x","conversation":"conv_1"})");
  EXPECT_EQ(conv.param, "conversation");
  EXPECT_EQ(conv.code, "unsupported_parameter");
  EXPECT_EQ(error_of(R"({"model":"m","input":"x","prompt":{"id":"pmpt_1"}})").param, "prompt");
  EXPECT_EQ(error_of(R"({"model":"m","input":"x","tools":[{"type":"web_search"}]})").param, "tools[0].type");
  EXPECT_EQ(error_of(R"({"model":"m","input":[{"role":"user","content":[{"type":"input_image","image_url":"x"}]}]})").param,
            "input[0].content[0].type");
  EXPECT_EQ(error_of(R"({"model":"m","input":[{"type":"item_reference","id":"x"}]})").param, "input[0].type");
  EXPECT_EQ(error_of(R"({"model":"m"})").param, "input");
  EXPECT_EQ(error_of(R"({"model":"m","input":"x","top_logprobs":3})").param, "top_logprobs");
  // The chat parser's findings, named as the client named the field.
  EXPECT_EQ(error_of(R"({"model":"m","input":"x","max_output_tokens":0})").param, "max_output_tokens");
  EXPECT_EQ(error_of(R"({"model":"m","input":"x","reasoning":{"effort":"huge"}})").param, "reasoning.effort");
  EXPECT_EQ(error_of(R"({"model":"m","input":[{"role":"user","content":"x"}],"tool_choice":"required"})").param, "tool_choice");
}

TEST(ResponsesApi, RendersOutputItems) {
  ResponseMeta meta{"resp_abc", 7, "m", "fp", 3};
  ChoiceOutput c;
  c.reasoning = "think";
  c.tool_calls = {{"call_1", "f", "{}"}};
  c.finish_reason = "tool_calls";
  Json r = Json::parse(responses_renderer().response(meta, {c}, {3, 4, 1, 2}));
  EXPECT_EQ(r["object"], "response");
  EXPECT_EQ(r["status"], "completed");
  ASSERT_EQ(r["output"].size(), 2u);
  EXPECT_EQ(r["output"][0], Json::parse(R"({"id":"rs_abc_0","type":"reasoning","summary":[],
    "content":[{"type":"reasoning_text","text":"think"}]})"));
  EXPECT_EQ(r["output"][1], Json::parse(R"({"id":"fc_abc_1","type":"function_call","status":"completed","call_id":"call_1",
    "name":"f","arguments":"{}"})"));
  EXPECT_EQ(r["usage"], Json::parse(R"({"input_tokens":3,"input_tokens_details":{"cached_tokens":1,"cache_write_tokens":0},"output_tokens":4,
    "output_tokens_details":{"reasoning_tokens":2},"total_tokens":7})"));
  ChoiceOutput cut;
  cut.text = "abc";
  cut.finish_reason = "length";
  Json i = Json::parse(responses_renderer().response(meta, {cut}, {}));
  EXPECT_EQ(i["status"], "incomplete");
  EXPECT_EQ(i["incomplete_details"]["reason"], "max_output_tokens");
  EXPECT_EQ(i["output"][0]["content"][0]["text"], "abc");
}

TEST(ResponsesApi, StreamsTheEventSequenceNumbered) {
  ResponseMeta meta{"resp_abc", 7, "m", "fp", 3};
  auto w = responses_renderer().stream_writer(meta, false);
  std::string sse = w->open(0, nullptr);
  ChoiceDelta think;
  think.reasoning = "hm";
  sse += w->delta(think);
  ChoiceDelta text;
  text.text = "a";
  sse += w->delta(text);
  text.text = "b";
  sse += w->delta(text);
  ChoiceDelta call;
  call.tool_calls = {{0, true, "call_1", "f", ""}, {0, false, "", "", "{}"}};
  sse += w->delta(call);
  ChoiceDelta fin;
  fin.finish_reason = "tool_calls";
  sse += w->delta(fin);
  sse += w->end({3, 6, 0, 2});
  auto ev = events(sse);
  std::vector<std::string> names;
  for (size_t k = 0; k < ev.size(); ++k) {
    names.push_back(ev[k].first);
    EXPECT_EQ(ev[k].second["type"], ev[k].first);
    EXPECT_EQ(ev[k].second["sequence_number"], k);
  }
  EXPECT_EQ(names, (std::vector<std::string>{"response.created", "response.in_progress",
      "response.output_item.added", "response.content_part.added", "response.reasoning_text.delta",
      "response.reasoning_text.done", "response.content_part.done", "response.output_item.done",
      "response.output_item.added", "response.content_part.added", "response.output_text.delta",
      "response.output_text.delta", "response.output_text.done", "response.content_part.done",
      "response.output_item.done",
      "response.output_item.added", "response.function_call_arguments.delta",
      "response.function_call_arguments.done", "response.output_item.done", "response.completed"}));
  EXPECT_EQ(ev[12].second["text"], "ab");
  EXPECT_EQ(ev[12].second["output_index"], 1);
  EXPECT_EQ(ev[15].second["item"]["call_id"], "call_1");
  EXPECT_EQ(ev[17].second["arguments"], "{}");
  const Json& done = ev.back().second["response"];
  EXPECT_EQ(done["status"], "completed");
  ASSERT_EQ(done["output"].size(), 3u);
  EXPECT_EQ(done["output"][1]["content"][0]["text"], "ab");
  EXPECT_EQ(done["usage"]["output_tokens"], 6);
  // A failure mid-stream is the error event, numbered on.
  auto err = events(w->error(error_with_status(500, "boom")));
  EXPECT_EQ(err[0].first, "error");
  EXPECT_EQ(err[0].second["sequence_number"], ev.size());
  EXPECT_EQ(err[0].second["message"], "boom");
}

TEST(ResponsesApi, AStoredResponseKeepsItsIdEchoesItsRequestAndIsHandedOverOnce) {
  std::vector<Json> stored;
  ResponseOptions o;
  o.id = "resp_fixed";
  o.echo = response_echo(Json::parse(R"({"model":"m","input":"x","instructions":"brief","temperature":0.5,
                                          "metadata":{"k":"v"},"previous_response_id":"resp_0","stream":true})"));
  o.store = true;
  o.on_final = [&](const Json& r) { stored.push_back(r); };
  auto api = make_responses_renderer(o);
  ResponseMeta meta{"resp_generated", 7, "m", "fp", 3};
  ChoiceOutput c;
  c.text = "hi";
  c.finish_reason = "stop";
  Json r = Json::parse(api->response(meta, {c}, {3, 1, 0, 0}));
  EXPECT_EQ(r["id"], "resp_fixed");
  EXPECT_EQ(r["output"][0]["id"], "msg_fixed_0");
  EXPECT_EQ(r["instructions"], "brief");
  EXPECT_EQ(r["temperature"], 0.5);
  EXPECT_EQ(r["top_p"], nullptr);
  EXPECT_EQ(r["metadata"], Json::parse(R"({"k":"v"})"));
  EXPECT_EQ(r["previous_response_id"], "resp_0");
  EXPECT_EQ(r["store"], true);
  EXPECT_FALSE(r.contains("stream"));
  ASSERT_EQ(stored.size(), 1u);
  EXPECT_EQ(stored[0], r);
  // The stream hands over its final object as well; created and in_progress are not final.
  auto w = api->stream_writer(meta, false);
  (void)w->open(0, nullptr);
  ChoiceDelta d;
  d.text = "hi";
  (void)w->delta(d);
  ChoiceDelta end;
  end.finish_reason = "stop";
  (void)w->delta(end);
  (void)w->end({3, 1, 0, 0});
  ASSERT_EQ(stored.size(), 2u);
  EXPECT_EQ(stored[1]["id"], "resp_fixed");
  // A model whose kiln.toml says store_bodies = false keeps its answers out of the store.
  meta.store_bodies = false;
  Json kept_out = Json::parse(api->response(meta, {c}, {3, 1, 0, 0}));
  EXPECT_EQ(kept_out["store"], false);
  EXPECT_EQ(stored.size(), 2u);
}

}  // namespace
}  // namespace kiln::http
