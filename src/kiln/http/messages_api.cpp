#include "kiln/http/messages_api.h"

#include "kiln/core/str.h"
#include "kiln/http/sse.h"

namespace kiln::http {

namespace {

std::string dump(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

ApiError missing(const std::string& param) {
  return invalid_param(param, "Field required.", "missing_required_parameter");
}

// Text of a string or of a list of text blocks (system, tool_result content), joined by newlines.
std::optional<ApiError> block_text(const Json& v, const std::string& param, std::string* out) {
  return content_text(v, param, "text blocks", {"text"},
                      [](const Json&, const std::string&, const std::string& bp, std::string*) -> std::optional<ApiError> {
                        return invalid_param(bp + ".type", "only text blocks are supported here.", "unsupported_content_type");
                      },
                      out);
}

// One message of the conversation: its text, tool_use and thinking blocks become an OpenAI message;
// a user's tool_result blocks become tool messages, ahead of the user's text as they answer the
// calls before it.
std::optional<ApiError> translate_message(const Json& m, size_t i, Json* messages) {
  const std::string param = str_cat("messages[", i, "]");
  if (!m.is_object()) return invalid_type(param, "an object", json_type_phrase(m));
  auto role = m.find("role");
  if (role == m.end() || !role->is_string()) return missing(param + ".role");
  const std::string r = role->get<std::string>();
  if (r != "user" && r != "assistant") {
    return invalid_param(param + ".role", str_cat("'", echo_value(r), "' is not one of 'user', 'assistant'."));
  }
  auto content = m.find("content");
  if (content == m.end() || content->is_null()) return missing(param + ".content");
  if (content->is_string()) {
    messages->push_back({{"role", r}, {"content", *content}});
    return std::nullopt;
  }
  if (!content->is_array()) return invalid_type(param + ".content", "a string or an array of content blocks", json_type_phrase(*content));
  std::string text, thinking;
  Json calls = Json::array();
  size_t results = 0;
  for (size_t k = 0; k < content->size(); ++k) {
    const Json& b = (*content)[k];
    const std::string bp = str_cat(param, ".content[", k, "]");
    if (!b.is_object()) return invalid_type(bp, "an object", json_type_phrase(b));
    auto type = b.find("type");
    if (type == b.end() || !type->is_string()) return missing(bp + ".type");
    const std::string t = type->get<std::string>();
    if (t == "text") {
      auto tx = b.find("text");
      if (tx == b.end() || !tx->is_string()) return invalid_type(bp + ".text", "a string", tx == b.end() ? "nothing" : json_type_phrase(*tx));
      if (!text.empty()) text += "\n";
      text += tx->get<std::string>();
    } else if (t == "tool_use" && r == "assistant") {
      auto id = b.find("id");
      auto name = b.find("name");
      if (id == b.end() || !id->is_string()) return missing(bp + ".id");
      if (name == b.end() || !name->is_string()) return missing(bp + ".name");
      auto input = b.find("input");
      Json args = input == b.end() || input->is_null() ? Json::object() : *input;
      if (!args.is_object()) return invalid_type(bp + ".input", "an object", json_type_phrase(args));
      calls.push_back({{"id", *id}, {"type", "function"}, {"function", {{"name", *name}, {"arguments", dump(args)}}}});
    } else if (t == "tool_result" && r == "user") {
      auto id = b.find("tool_use_id");
      if (id == b.end() || !id->is_string()) return missing(bp + ".tool_use_id");
      std::string result;
      auto rc = b.find("content");
      if (rc != b.end() && !rc->is_null()) KILN_API_CHECK(block_text(*rc, bp + ".content", &result));
      messages->push_back({{"role", "tool"}, {"tool_call_id", *id}, {"content", result}});
      ++results;
    } else if ((t == "thinking" || t == "redacted_thinking") && r == "assistant") {
      // The model's own earlier reasoning goes back to templates that show it (reasoning_content);
      // redacted reasoning is opaque and is left out.
      auto th = b.find("thinking");
      if (t == "thinking" && th != b.end() && th->is_string()) thinking += th->get<std::string>();
    } else if (t == "image" || t == "document") {
      return invalid_param(bp + ".type", str_cat("'", t, "' blocks are not supported: kiln serves text models."),
                           "unsupported_content_type");
    } else {
      return invalid_param(bp + ".type", str_cat("'", echo_value(t), "' blocks are not supported in ", r, " messages."),
                           "unsupported_content_type");
    }
  }
  if (r == "user") {
    // A turn of tool results alone has no user text to add.
    if (!text.empty() || results == 0) messages->push_back({{"role", "user"}, {"content", text}});
    return std::nullopt;
  }
  Json msg = {{"role", "assistant"}, {"content", text}};
  if (!thinking.empty()) msg["reasoning_content"] = thinking;
  if (!calls.empty()) msg["tool_calls"] = std::move(calls);
  messages->push_back(std::move(msg));
  return std::nullopt;
}

std::optional<ApiError> translate_tools(const Json& body, Json* chat) {
  auto tools = body.find("tools");
  if (tools != body.end() && !tools->is_null()) {
    if (!tools->is_array()) return invalid_type("tools", "an array", json_type_phrase(*tools));
    Json out = Json::array();
    for (size_t i = 0; i < tools->size(); ++i) {
      const Json& t = (*tools)[i];
      const std::string param = str_cat("tools[", i, "]");
      if (!t.is_object()) return invalid_type(param, "an object", json_type_phrase(t));
      auto type = t.find("type");
      if (type != t.end() && !type->is_null() && !(type->is_string() && type->get<std::string>() == "custom")) {
        return invalid_param(param + ".type", str_cat("server tools ('", echo_value(type->is_string() ? type->get<std::string>() : type->dump()),
                                                      "') are not supported; give client tools with an input_schema."),
                             "unsupported_value");
      }
      auto name = t.find("name");
      if (name == t.end() || !name->is_string()) return missing(param + ".name");
      auto schema = t.find("input_schema");
      if (schema == t.end() || schema->is_null()) return missing(param + ".input_schema");
      Json fn = {{"name", *name}, {"parameters", *schema}};
      auto desc = t.find("description");
      if (desc != t.end() && !desc->is_null()) fn["description"] = *desc;
      out.push_back({{"type", "function"}, {"function", std::move(fn)}});
    }
    (*chat)["tools"] = std::move(out);
  }
  auto tc = body.find("tool_choice");
  if (tc == body.end() || tc->is_null()) return std::nullopt;
  if (!tc->is_object()) return invalid_type("tool_choice", "an object", json_type_phrase(*tc));
  auto type = tc->find("type");
  const std::string t = type != tc->end() && type->is_string() ? type->get<std::string>() : "";
  if (t == "auto") (*chat)["tool_choice"] = "auto";
  else if (t == "any") (*chat)["tool_choice"] = "required";
  else if (t == "none") (*chat)["tool_choice"] = "none";
  else if (t == "tool") {
    auto name = tc->find("name");
    if (name == tc->end() || !name->is_string()) return missing("tool_choice.name");
    (*chat)["tool_choice"] = {{"type", "function"}, {"function", {{"name", *name}}}};
  } else {
    return invalid_param("tool_choice.type", "expected one of 'auto', 'any', 'tool', 'none'.");
  }
  auto dp = tc->find("disable_parallel_tool_use");
  if (dp != tc->end() && !dp->is_null()) {
    if (!dp->is_boolean()) return invalid_type("tool_choice.disable_parallel_tool_use", "a boolean", json_type_phrase(*dp));
    (*chat)["parallel_tool_calls"] = !dp->get<bool>();
  }
  return std::nullopt;
}

// thinking {type: enabled, budget_tokens} turns the model's reasoning on and picks the effort its
// template reads from the budget; {type: disabled} turns it off (docs/messages-api.md).
std::optional<ApiError> translate_thinking(const Json& body, Json* chat) {
  auto th = body.find("thinking");
  if (th == body.end() || th->is_null()) return std::nullopt;
  if (!th->is_object()) return invalid_type("thinking", "an object", json_type_phrase(*th));
  auto type = th->find("type");
  const std::string t = type != th->end() && type->is_string() ? type->get<std::string>() : "";
  if (t == "disabled") {
    (*chat)["reasoning_effort"] = "none";
  } else if (t == "enabled") {
    auto budget = th->find("budget_tokens");
    int64_t b = 0;
    if (budget == th->end() || !json_to_int(*budget, &b)) return missing("thinking.budget_tokens");
    if (b < 1024) return invalid_param("thinking.budget_tokens", "must be at least 1024.");
    (*chat)["reasoning_effort"] = b < 4096 ? "low" : b < 16384 ? "medium" : "high";
  } else if (t != "adaptive") {
    return invalid_param("thinking.type", "expected one of 'enabled', 'disabled', 'adaptive'.");
  }
  return std::nullopt;
}

}  // namespace

std::optional<ApiError> messages_to_chat(const Json& body, bool count_only, Json* chat) {
  *chat = Json::object();
  auto model = body.find("model");
  if (model == body.end() || model->is_null()) return missing("model");
  (*chat)["model"] = *model;
  if (!count_only) {
    auto mt = body.find("max_tokens");
    if (mt == body.end() || mt->is_null()) return missing("max_tokens");
    (*chat)["max_tokens"] = *mt;
    for (const char* f : {"temperature", "top_p", "top_k", "stream"}) {
      auto it = body.find(f);
      if (it != body.end()) (*chat)[f] = *it;
    }
    auto stops = body.find("stop_sequences");
    if (stops != body.end() && !stops->is_null()) {
      if (!stops->is_array()) return invalid_type("stop_sequences", "an array of strings", json_type_phrase(*stops));
      (*chat)["stop"] = *stops;
    }
  }
  Json messages = Json::array();
  auto system = body.find("system");
  if (system != body.end() && !system->is_null()) {
    std::string text;
    KILN_API_CHECK(block_text(*system, "system", &text));
    messages.push_back({{"role", "system"}, {"content", text}});
  }
  auto ms = body.find("messages");
  if (ms == body.end() || ms->is_null()) return missing("messages");
  if (!ms->is_array()) return invalid_type("messages", "an array", json_type_phrase(*ms));
  if (ms->empty()) return invalid_param("messages", "at least one message is required.");
  for (size_t i = 0; i < ms->size(); ++i) KILN_API_CHECK(translate_message((*ms)[i], i, &messages));
  (*chat)["messages"] = std::move(messages);
  KILN_API_CHECK(translate_tools(body, chat));
  KILN_API_CHECK(translate_thinking(body, chat));
  return std::nullopt;
}

ApiError messages_error(ApiError e) {
  // The chat parser names its own fields; the client sent these.
  static const std::pair<const char*, const char*> kNames[] = {
      {"max_completion_tokens", "max_tokens"}, {"stop", "stop_sequences"}, {"reasoning_effort", "thinking"}};
  for (const auto& [from, to] : kNames) e = rename_param(std::move(e), from, to);
  return e;
}

const char* anthropic_error_type(int status) {
  switch (status) {
    case 401: return "authentication_error";
    case 403: return "permission_error";
    case 404: return "not_found_error";
    case 413: return "request_too_large";
    case 429: return "rate_limit_error";
    case 503:
    case 529: return "overloaded_error";
    default: return status >= 500 ? "api_error" : "invalid_request_error";
  }
}

namespace {

Json anthropic_error_json(const ApiError& e) {
  return {{"type", "error"},
          {"error", {{"type", anthropic_error_type(e.status)}, {"message", echo_value(e.message, kMaxErrorMessageBytes)}}}};
}

HttpResponse anthropic_error_response(const ApiError& e) {
  HttpResponse r;
  r.status = e.status;
  r.body = dump(anthropic_error_json(e));
  if (e.retry_after_seconds > 0) r.headers.emplace_back("Retry-After", std::to_string(e.retry_after_seconds));
  return r;
}

std::string anthropic_error_event(const ApiError& e) { return sse_event("error", dump(anthropic_error_json(e))); }

Json stop_reason(const std::string& finish, const std::string& stop_sequence) {
  if (finish == "length") return "max_tokens";
  if (finish == "tool_calls") return "tool_use";
  if (!stop_sequence.empty()) return "stop_sequence";
  return "end_turn";
}

Json usage_json(int64_t input, int64_t output) { return {{"input_tokens", input}, {"output_tokens", output}}; }

// A tool call's arguments as the object Anthropic's input is. The output parser only completes a
// call whose arguments are a JSON object, so the fallback is for safety alone.
Json call_input(const std::string& arguments) {
  Json j = Json::parse(arguments, nullptr, /*allow_exceptions=*/false);
  if (j.is_object()) return j;
  return Json::object();
}

Json message_head(const ResponseMeta& meta) {
  return {{"id", meta.id}, {"type", "message"}, {"role", "assistant"}, {"model", meta.model}};
}

// Anthropic's stream: message_start, ping, then content blocks (each content_block_start, its
// deltas and content_block_stop, one open at a time), message_delta with stop_reason and usage,
// message_stop.
class MessagesWriter final : public StreamWriter {
 public:
  explicit MessagesWriter(ResponseMeta meta) : meta_(std::move(meta)) {}

  std::string open(int, const std::string*) override {
    Json m = message_head(meta_);
    m["content"] = Json::array();
    m["stop_reason"] = nullptr;
    m["stop_sequence"] = nullptr;
    m["usage"] = usage_json(meta_.prompt_tokens, 0);
    return event("message_start", {{"type", "message_start"}, {"message", std::move(m)}}) +
           event("ping", {{"type", "ping"}});
  }

  std::string delta(const ChoiceDelta& d) override {
    std::string out;
    if (!d.finish_reason.empty()) {
      finish_ = d.finish_reason;
      stop_sequence_ = d.stop_sequence;
      return close_block();
    }
    if (d.reasoning && !d.reasoning->empty()) {
      out += ensure_block(Block::kThinking, {{"type", "thinking"}, {"thinking", ""}, {"signature", ""}});
      out += block_delta({{"type", "thinking_delta"}, {"thinking", *d.reasoning}});
    }
    if (d.text && !d.text->empty()) {
      out += ensure_block(Block::kText, {{"type", "text"}, {"text", ""}});
      out += block_delta({{"type", "text_delta"}, {"text", *d.text}});
    }
    for (const auto& c : d.tool_calls) {
      if (c.opens) {
        out += close_block();
        out += start_block(Block::kTool, {{"type", "tool_use"}, {"id", c.id}, {"name", c.name}, {"input", Json::object()}});
      }
      if (!c.arguments.empty() && block_ == Block::kTool) {
        out += block_delta({{"type", "input_json_delta"}, {"partial_json", c.arguments}});
      }
    }
    return out;
  }

  std::string end(const Usage& usage) override {
    std::string out = close_block();
    out += event("message_delta", {{"type", "message_delta"},
                                   {"delta", {{"stop_reason", stop_reason(finish_, stop_sequence_)},
                                              {"stop_sequence", stop_sequence_.empty() ? Json(nullptr) : Json(stop_sequence_)}}},
                                   {"usage", usage_json(usage.prompt_tokens, usage.completion_tokens)}});
    return out + event("message_stop", {{"type", "message_stop"}});
  }

  std::string error(const ApiError& e) override { return anthropic_error_event(e); }

 private:
  enum class Block { kNone, kText, kThinking, kTool };

  static std::string event(const char* name, const Json& j) { return sse_event(name, dump(j)); }

  std::string start_block(Block b, Json block) {
    block_ = b;
    return event("content_block_start", {{"type", "content_block_start"}, {"index", index_}, {"content_block", std::move(block)}});
  }
  std::string ensure_block(Block b, Json block) {
    if (block_ == b) return "";
    std::string out = close_block();  // before the start: it numbers the blocks
    return out + start_block(b, std::move(block));
  }
  std::string block_delta(Json delta) {
    return event("content_block_delta", {{"type", "content_block_delta"}, {"index", index_}, {"delta", std::move(delta)}});
  }
  std::string close_block() {
    if (block_ == Block::kNone) return "";
    block_ = Block::kNone;
    return event("content_block_stop", {{"type", "content_block_stop"}, {"index", index_++}});
  }

  ResponseMeta meta_;
  Block block_ = Block::kNone;
  int index_ = 0;
  std::string finish_, stop_sequence_;
};

class MessagesRenderer final : public ResponseRenderer {
 public:
  std::string_view prompt_param() const override { return "messages"; }
  std::string_view logprobs_param() const override { return "logprobs"; }

  std::string response(const ResponseMeta& meta, const std::vector<ChoiceOutput>& choices,
                       const Usage& usage) const override {
    Json m = message_head(meta);
    Json content = Json::array();
    std::string finish, stop_sequence;
    if (!choices.empty()) {
      const ChoiceOutput& c = choices[0];
      if (!c.reasoning.empty()) content.push_back({{"type", "thinking"}, {"thinking", c.reasoning}, {"signature", ""}});
      if (!c.text.empty() || (c.tool_calls.empty() && c.reasoning.empty())) content.push_back({{"type", "text"}, {"text", c.text}});
      for (const auto& t : c.tool_calls) {
        content.push_back({{"type", "tool_use"}, {"id", t.id}, {"name", t.name}, {"input", call_input(t.arguments)}});
      }
      finish = c.finish_reason;
      stop_sequence = c.stop_sequence;
    }
    m["content"] = std::move(content);
    m["stop_reason"] = stop_reason(finish, stop_sequence);
    m["stop_sequence"] = stop_sequence.empty() ? Json(nullptr) : Json(stop_sequence);
    m["usage"] = usage_json(usage.prompt_tokens, usage.completion_tokens);
    return dump(m);
  }

  std::unique_ptr<StreamWriter> stream_writer(const ResponseMeta& meta, bool) const override {
    return std::make_unique<MessagesWriter>(meta);
  }

  ApiError context_length_error(int64_t max_len, int64_t prompt_tokens,
                                std::optional<int64_t> max_tokens) const override {
    std::string msg = max_tokens ? str_cat("prompt is too long: ", prompt_tokens, " tokens + max_tokens ", *max_tokens,
                                           " > ", max_len, " tokens, the model's context length.")
                                 : str_cat("prompt is too long: ", prompt_tokens, " tokens > ", max_len, " maximum");
    ApiError e = error_with_status(400, msg, "context_length_exceeded");
    e.param = max_tokens ? "max_tokens" : "messages";
    return e;
  }
};

}  // namespace

const ResponseRenderer& messages_renderer() {
  static const MessagesRenderer kMessages;
  return kMessages;
}

const ErrorFormat& anthropic_error_format() {
  static const ErrorFormat kAnthropic{anthropic_error_response, anthropic_error_event};
  return kAnthropic;
}

}  // namespace kiln::http
