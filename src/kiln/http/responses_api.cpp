#include "kiln/http/responses_api.h"

#include "kiln/core/str.h"
#include "kiln/http/sse.h"

namespace kiln::http {

namespace {

std::string dump(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

ApiError missing(const std::string& param) {
  return invalid_param(param, "Field required.", "missing_required_parameter");
}

ApiError unsupported(const std::string& param, const std::string& why) {
  return invalid_param(param, why, "unsupported_parameter");
}

// The text of a message's content: a string, or input_text / output_text parts joined by newlines.
std::optional<ApiError> content_text(const Json& content, const std::string& param, std::string* out) {
  return http::content_text(
      content, param, "content parts", {"input_text", "output_text", "text", "summary_text", "reasoning_text"},
      [](const Json& p, const std::string& t, const std::string& pp, std::string* text) -> std::optional<ApiError> {
        if (t == "refusal") {
          auto r = p.find("refusal");
          if (r != p.end() && r->is_string()) *text += r->get<std::string>();
          return std::nullopt;
        }
        if (t == "input_image" || t == "input_file" || t == "input_audio") {
          return invalid_param(pp + ".type", str_cat("'", t, "' parts are not supported: kiln serves text models."),
                               "unsupported_content_type");
        }
        return invalid_param(pp + ".type", str_cat("'", echo_value(t), "' content parts are not supported; use 'input_text'."),
                             "unsupported_content_type");
      },
      out);
}

// The input items, in order, as chat messages. Consecutive function_call items are one assistant
// turn (with the assistant message before them, if any); a reasoning item goes to the assistant
// turn that follows it as reasoning_content.
class InputTranslator {
 public:
  explicit InputTranslator(Json* messages) : messages_(messages) {}

  std::optional<ApiError> item(const Json& it, size_t i) {
    const std::string param = str_cat("input[", i, "]");
    if (!it.is_object()) return invalid_type(param, "an object", json_type_phrase(it));
    auto type = it.find("type");
    const std::string t = type != it.end() && type->is_string() ? type->get<std::string>() : "message";
    if (t == "message") return message(it, param);
    if (t == "function_call") {
      auto call_id = it.find("call_id");
      auto name = it.find("name");
      auto args = it.find("arguments");
      if (call_id == it.end() || !call_id->is_string()) return missing(param + ".call_id");
      if (name == it.end() || !name->is_string()) return missing(param + ".name");
      if (args == it.end() || !args->is_string()) return missing(param + ".arguments");
      Json& turn = assistant_turn();
      if (!turn.contains("tool_calls")) turn["tool_calls"] = Json::array();
      turn["tool_calls"].push_back({{"id", *call_id}, {"type", "function"}, {"function", {{"name", *name}, {"arguments", *args}}}});
      return std::nullopt;
    }
    if (t == "function_call_output") {
      auto call_id = it.find("call_id");
      auto output = it.find("output");
      if (call_id == it.end() || !call_id->is_string()) return missing(param + ".call_id");
      if (output == it.end() || output->is_null()) return missing(param + ".output");
      std::string text;
      KILN_API_CHECK(content_text(*output, param + ".output", &text));
      messages_->push_back({{"role", "tool"}, {"tool_call_id", *call_id}, {"content", text}});
      return std::nullopt;
    }
    if (t == "reasoning") {
      std::string text;
      for (const char* f : {"content", "summary"}) {
        auto c = it.find(f);
        if (c != it.end() && c->is_array() && !c->empty()) {
          KILN_API_CHECK(content_text(*c, str_cat(param, ".", f), &text));
          break;
        }
      }
      reasoning_ += text;
      return std::nullopt;
    }
    if (t == "item_reference") {
      return unsupported(param + ".type", "items cannot be referenced; send them in full, or continue a stored response "
                                          "with 'previous_response_id'.");
    }
    return invalid_param(param + ".type", str_cat("'", echo_value(t), "' items are not supported; kiln takes message, "
                                                  "function_call, function_call_output and reasoning items."),
                         "unsupported_value");
  }

 private:
  std::optional<ApiError> message(const Json& it, const std::string& param) {
    auto role = it.find("role");
    if (role == it.end() || !role->is_string()) return missing(param + ".role");
    const std::string r = role->get<std::string>();
    if (r != "user" && r != "assistant" && r != "system" && r != "developer") {
      return invalid_param(param + ".role", str_cat("'", echo_value(r), "' is not one of 'user', 'assistant', 'system', 'developer'."));
    }
    auto content = it.find("content");
    if (content == it.end() || content->is_null()) return missing(param + ".content");
    std::string text;
    KILN_API_CHECK(content_text(*content, param + ".content", &text));
    if (r == "assistant") {
      Json& turn = assistant_turn(/*fresh=*/true);
      turn["content"] = text;
    } else {
      messages_->push_back({{"role", r}, {"content", text}});
    }
    return std::nullopt;
  }

  // The assistant turn that calls join: the last message when it is one, else a new one.
  Json& assistant_turn(bool fresh = false) {
    if (fresh || messages_->empty() || messages_->back()["role"] != "assistant") {
      messages_->push_back({{"role", "assistant"}, {"content", ""}});
    }
    Json& turn = messages_->back();
    if (!reasoning_.empty()) {
      turn["reasoning_content"] = reasoning_;
      reasoning_.clear();
    }
    return turn;
  }

  Json* messages_;
  std::string reasoning_;
};

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
      const std::string ty = type != t.end() && type->is_string() ? type->get<std::string>() : "";
      if (ty != "function") {
        return invalid_param(param + ".type", str_cat("'", echo_value(ty), "' tools are not supported; kiln runs no "
                                                      "hosted tools, use 'function'."), "unsupported_value");
      }
      Json fn = Json::object();
      for (const char* f : {"name", "description", "parameters", "strict"}) {
        auto v = t.find(f);
        if (v != t.end() && !v->is_null()) fn[f] = *v;
      }
      out.push_back({{"type", "function"}, {"function", std::move(fn)}});
    }
    (*chat)["tools"] = std::move(out);
  }
  auto tc = body.find("tool_choice");
  if (tc != body.end() && !tc->is_null()) {
    if (tc->is_string()) {
      (*chat)["tool_choice"] = *tc;
    } else if (tc->is_object()) {
      auto type = tc->find("type");
      auto name = tc->find("name");
      if (type == tc->end() || *type != "function") {
        return invalid_param("tool_choice", "kiln takes 'none', 'auto', 'required' or {\"type\": \"function\", \"name\": ...}.",
                             "unsupported_value");
      }
      if (name == tc->end() || !name->is_string()) return missing("tool_choice.name");
      (*chat)["tool_choice"] = {{"type", "function"}, {"function", {{"name", *name}}}};
    } else {
      return invalid_type("tool_choice", "a string or an object", json_type_phrase(*tc));
    }
  }
  auto ptc = body.find("parallel_tool_calls");
  if (ptc != body.end()) (*chat)["parallel_tool_calls"] = *ptc;
  return std::nullopt;
}

// text.format: text, json_object, or json_schema with its fields at the top of the format.
std::optional<ApiError> translate_text(const Json& body, Json* chat) {
  auto text = body.find("text");
  if (text == body.end() || text->is_null()) return std::nullopt;
  if (!text->is_object()) return invalid_type("text", "an object", json_type_phrase(*text));
  auto format = text->find("format");
  if (format == text->end() || format->is_null()) return std::nullopt;
  if (!format->is_object()) return invalid_type("text.format", "an object", json_type_phrase(*format));
  auto type = format->find("type");
  const std::string t = type != format->end() && type->is_string() ? type->get<std::string>() : "";
  if (t == "text") return std::nullopt;
  if (t == "json_object") {
    (*chat)["response_format"] = {{"type", "json_object"}};
  } else if (t == "json_schema") {
    Json js = Json::object();
    for (const char* f : {"name", "schema", "strict", "description"}) {
      auto v = format->find(f);
      if (v != format->end() && !v->is_null()) js[f] = *v;
    }
    (*chat)["response_format"] = {{"type", "json_schema"}, {"json_schema", std::move(js)}};
  } else {
    return invalid_param("text.format.type", "expected one of 'text', 'json_object', 'json_schema'.");
  }
  return std::nullopt;
}

}  // namespace

std::optional<ApiError> responses_to_chat(const Json& body, Json* chat) {
  *chat = Json::object();
  // Server-side state other than stored responses (previous_response_id and background are the
  // handler's, stored_responses.h): kiln keeps no conversations or stored prompts.
  for (const char* f : {"conversation", "prompt"}) {
    auto v = body.find(f);
    if (v != body.end() && !v->is_null()) {
      return unsupported(f, "kiln keeps no conversations or stored prompts; send the conversation in 'input', or "
                            "continue a stored response with 'previous_response_id'.");
    }
  }
  auto tl = body.find("top_logprobs");
  if (tl != body.end() && !tl->is_null() && !(tl->is_number() && tl->get<double>() == 0)) {
    return unsupported("top_logprobs", "logprobs are not supported on /v1/responses; use /v1/chat/completions.");
  }
  auto model = body.find("model");
  if (model == body.end() || model->is_null()) return missing("model");
  (*chat)["model"] = *model;
  auto mot = body.find("max_output_tokens");
  if (mot != body.end()) (*chat)["max_completion_tokens"] = *mot;
  for (const char* f : {"temperature", "top_p", "stream", "user"}) {
    auto it = body.find(f);
    if (it != body.end()) (*chat)[f] = *it;
  }
  Json messages = Json::array();
  auto instr = body.find("instructions");
  if (instr != body.end() && !instr->is_null()) {
    if (!instr->is_string()) return invalid_type("instructions", "a string", json_type_phrase(*instr));
    messages.push_back({{"role", "system"}, {"content", *instr}});
  }
  auto input = body.find("input");
  if (input == body.end() || input->is_null()) return missing("input");
  if (input->is_string()) {
    messages.push_back({{"role", "user"}, {"content", *input}});
  } else if (input->is_array()) {
    InputTranslator tr(&messages);
    for (size_t i = 0; i < input->size(); ++i) KILN_API_CHECK(tr.item((*input)[i], i));
  } else {
    return invalid_type("input", "a string or an array of items", json_type_phrase(*input));
  }
  if (messages.empty()) return invalid_param("input", "the input holds no message.");
  (*chat)["messages"] = std::move(messages);
  KILN_API_CHECK(translate_tools(body, chat));
  KILN_API_CHECK(translate_text(body, chat));
  auto reasoning = body.find("reasoning");
  if (reasoning != body.end() && !reasoning->is_null()) {
    if (!reasoning->is_object()) return invalid_type("reasoning", "an object", json_type_phrase(*reasoning));
    auto effort = reasoning->find("effort");
    if (effort != reasoning->end() && !effort->is_null()) (*chat)["reasoning_effort"] = *effort;
  }
  return std::nullopt;
}

namespace {
// The chat parser names its own fields; the client sent these. json_schema's fields sit in
// text.format itself.
const std::pair<const char*, const char*> kNames[] = {{"max_completion_tokens", "max_output_tokens"},
                                                      {"response_format.json_schema", "text.format"},
                                                      {"response_format", "text.format"},
                                                      {"reasoning_effort", "reasoning.effort"}};
}  // namespace

ApiError responses_error(ApiError e) {
  for (const auto& [from, to] : kNames) e = rename_param(std::move(e), from, to);
  if (starts_with(e.param, "messages")) e.param = "input";  // the translated conversation
  return e;
}

void rename_chat_fields(ChatRequest* req) {
  if (!req->params.structured) return;
  std::string& p = req->params.structured->param;
  for (const auto& [from, to] : kNames) p = rename_field(p, from, to);
}

namespace {

Json usage_json(const Usage& u) {
  return {{"input_tokens", u.prompt_tokens},
          {"input_tokens_details", {{"cached_tokens", u.cached_tokens}, {"cache_write_tokens", 0}}},
          {"output_tokens", u.completion_tokens},
          {"output_tokens_details", {{"reasoning_tokens", u.reasoning_tokens}}},
          {"total_tokens", u.prompt_tokens + u.completion_tokens}};
}

}  // namespace

Json response_object(const std::string& id, int64_t created, const std::string& model, const std::string& status,
                     Json output, Json usage, const Json& echo) {
  Json r = {{"id", id},
            {"object", "response"},
            {"created_at", created},
            {"status", status},
            {"error", nullptr},
            {"incomplete_details", status == "incomplete" ? Json{{"reason", "max_output_tokens"}} : Json(nullptr)},
            {"instructions", nullptr},
            {"max_output_tokens", nullptr},
            {"model", model},
            {"output", std::move(output)},
            {"parallel_tool_calls", true},
            {"previous_response_id", nullptr},
            {"reasoning", nullptr},
            {"store", false},
            {"temperature", nullptr},
            {"text", {{"format", {{"type", "text"}}}}},
            {"tool_choice", "auto"},
            {"tools", Json::array()},
            {"top_p", nullptr},
            {"background", false},
            {"metadata", Json::object()},
            {"usage", std::move(usage)}};
  if (echo.is_object()) {
    for (const auto& [k, v] : echo.items()) {
      if (!v.is_null() && r.contains(k)) r[k] = v;
    }
  }
  return r;
}

Json response_echo(const Json& body) {
  Json echo = Json::object();
  for (const char* f : {"instructions", "max_output_tokens", "parallel_tool_calls", "previous_response_id", "reasoning",
                        "temperature", "text", "tool_choice", "tools", "top_p", "metadata", "background", "user"}) {
    auto v = body.find(f);
    if (v != body.end() && !v->is_null()) echo[f] = *v;
  }
  return echo;
}

namespace {

std::string final_status(const std::string& finish) { return finish == "length" ? "incomplete" : "completed"; }

// Item ids share the response's random part: resp_X -> msg_X_0, fc_X_1, ...
std::string item_id(const ResponseMeta& meta, const char* prefix, int n) {
  const size_t us = meta.id.find('_');
  return str_cat(prefix, us == std::string::npos ? meta.id : meta.id.substr(us + 1), "_", n);
}

Json reasoning_item(std::string id, const std::string& text) {
  return {{"id", std::move(id)}, {"type", "reasoning"}, {"summary", Json::array()},
          {"content", Json::array({{{"type", "reasoning_text"}, {"text", text}}})}};
}

Json text_part(const std::string& text) {
  return {{"type", "output_text"}, {"text", text}, {"annotations", Json::array()}, {"logprobs", Json::array()}};
}

Json message_item(std::string id, const std::string& status, Json content) {
  return {{"id", std::move(id)}, {"type", "message"}, {"status", status}, {"role", "assistant"}, {"content", std::move(content)}};
}

Json call_item(std::string id, const std::string& status, const std::string& call_id, const std::string& name,
               const std::string& arguments) {
  return {{"id", std::move(id)}, {"type", "function_call"}, {"status", status}, {"call_id", call_id}, {"name", name},
          {"arguments", arguments}};
}

// A model whose kiln.toml says store_bodies = false keeps its answers out of every store.
bool stores(const ResponseMeta& meta, const ResponseOptions& o) { return o.store && meta.store_bodies != false; }

Json object(const ResponseMeta& meta, const ResponseOptions& o, const std::string& status, Json output, Json usage) {
  Json r = response_object(meta.id, meta.created, meta.model, status, std::move(output),
                           std::move(usage), o.echo);
  // A background run has no on_final: its record is the store, whatever the model says.
  r["store"] = o.on_final ? stores(meta, o) : o.store;
  return r;
}

void finished(const ResponseMeta& meta, const ResponseOptions& o, const Json& response) {
  if (o.on_final && stores(meta, o)) o.on_final(response);
}

// The Responses stream: response.created and response.in_progress, then each output item in turn
// (output_item.added, its part and deltas, their .done events, output_item.done), then
// response.completed (or response.incomplete) with the whole response. Every event carries a
// sequence_number counting from 0.
class ResponsesWriter final : public StreamWriter {
 public:
  ResponsesWriter(ResponseMeta meta, const ResponseOptions& options) : meta_(std::move(meta)), options_(options) {}

  std::string open(int, const std::string*) override {
    Json r = object(meta_, options_, "in_progress", Json::array(), nullptr);
    std::string out = event("response.created", {{"response", r}});
    return out + event("response.in_progress", {{"response", r}});
  }

  std::string delta(const ChoiceDelta& d) override {
    if (!d.finish_reason.empty()) {
      finish_ = d.finish_reason;
      return close_item();
    }
    std::string out;
    if (d.reasoning && !d.reasoning->empty()) {
      if (kind_ != Kind::kReasoning) {
        out += close_item();
        out += add_item(Kind::kReasoning, {{"id", id_}, {"type", "reasoning"}, {"summary", Json::array()}, {"content", Json::array()}}, "rs_");
        out += event("response.content_part.added", part_fields({{"part", {{"type", "reasoning_text"}, {"text", ""}}}}));
      }
      text_ += *d.reasoning;
      out += event("response.reasoning_text.delta", part_fields({{"delta", *d.reasoning}}));
    }
    if (d.text && !d.text->empty()) {
      if (kind_ != Kind::kMessage) {
        out += close_item();
        out += add_item(Kind::kMessage, message_item("", "in_progress", Json::array()), "msg_");
        out += event("response.content_part.added", part_fields({{"part", text_part("")}}));
      }
      text_ += *d.text;
      out += event("response.output_text.delta", part_fields({{"delta", *d.text}, {"logprobs", Json::array()}}));
    }
    for (const auto& c : d.tool_calls) {
      if (c.opens) {
        out += close_item();
        call_id_ = c.id;
        name_ = c.name;
        out += add_item(Kind::kCall, call_item("", "in_progress", c.id, c.name, ""), "fc_");
      }
      if (!c.arguments.empty() && kind_ == Kind::kCall) {
        text_ += c.arguments;
        out += event("response.function_call_arguments.delta",
                     {{"item_id", id_}, {"output_index", output_index()}, {"delta", c.arguments}});
      }
    }
    return out;
  }

  std::string end(const Usage& usage) override {
    std::string out = close_item();
    Json r = object(meta_, options_, final_status(finish_), output_, usage_json(usage));
    finished(meta_, options_, r);
    return out + event(finish_ == "length" ? "response.incomplete" : "response.completed", {{"response", std::move(r)}});
  }

  std::string error(const ApiError& e) override {
    return event("error", {{"code", e.code.empty() ? Json(nullptr) : Json(e.code)},
                           {"message", echo_value(e.message, kMaxErrorMessageBytes)},
                           {"param", e.param.empty() ? Json(nullptr) : Json(e.param)}});
  }

 private:
  enum class Kind { kNone, kReasoning, kMessage, kCall };

  std::string event(const char* type, Json fields) {
    Json j = {{"type", type}, {"sequence_number", seq_++}};
    for (auto& [k, v] : fields.items()) j[k] = std::move(v);
    return sse_event(type, dump(j));
  }

  int output_index() const { return static_cast<int>(output_.size()); }

  Json part_fields(Json extra) const {
    Json j = {{"item_id", id_}, {"output_index", output_index()}, {"content_index", 0}};
    for (auto& [k, v] : extra.items()) j[k] = std::move(v);
    return j;
  }

  std::string add_item(Kind k, Json item, const char* prefix) {
    kind_ = k;
    id_ = item_id(meta_, prefix, output_index());
    text_.clear();
    item["id"] = id_;
    return event("response.output_item.added", {{"output_index", output_index()}, {"item", std::move(item)}});
  }

  std::string close_item() {
    std::string out;
    Json item;
    switch (kind_) {
      case Kind::kNone: return "";
      case Kind::kReasoning:
        out += event("response.reasoning_text.done", part_fields({{"text", text_}}));
        out += event("response.content_part.done", part_fields({{"part", {{"type", "reasoning_text"}, {"text", text_}}}}));
        item = reasoning_item(id_, text_);
        break;
      case Kind::kMessage:
        out += event("response.output_text.done", part_fields({{"text", text_}, {"logprobs", Json::array()}}));
        out += event("response.content_part.done", part_fields({{"part", text_part(text_)}}));
        item = message_item(id_, "completed", Json::array({text_part(text_)}));
        break;
      case Kind::kCall:
        out += event("response.function_call_arguments.done",
                     {{"item_id", id_}, {"output_index", output_index()}, {"name", name_}, {"arguments", text_}});
        item = call_item(id_, "completed", call_id_, name_, text_);
        break;
    }
    out += event("response.output_item.done", {{"output_index", output_index()}, {"item", item}});
    output_.push_back(std::move(item));
    kind_ = Kind::kNone;
    return out;
  }

  ResponseMeta meta_;
  const ResponseOptions& options_;  // the renderer's, which outlives its writers
  int64_t seq_ = 0;
  Json output_ = Json::array();  // the items closed so far
  Kind kind_ = Kind::kNone;      // the item open now
  std::string id_, text_, call_id_, name_;
  std::string finish_;
};

class ResponsesRenderer final : public ResponseRenderer {
 public:
  explicit ResponsesRenderer(ResponseOptions options) : options_(std::move(options)) {}

  std::string_view prompt_param() const override { return "input"; }
  std::string_view logprobs_param() const override { return "top_logprobs"; }

  std::string response(const ResponseMeta& given, const std::vector<ChoiceOutput>& choices,
                       const Usage& usage) const override {
    const ResponseMeta meta = with_id(given);
    Json output = Json::array();
    std::string finish;
    if (!choices.empty()) {
      const ChoiceOutput& c = choices[0];
      if (!c.reasoning.empty()) output.push_back(reasoning_item(item_id(meta, "rs_", 0), c.reasoning));
      if (!c.text.empty() || c.tool_calls.empty()) {
        output.push_back(message_item(item_id(meta, "msg_", static_cast<int>(output.size())), "completed",
                                      Json::array({text_part(c.text)})));
      }
      for (const auto& t : c.tool_calls) {
        output.push_back(call_item(item_id(meta, "fc_", static_cast<int>(output.size())), "completed", t.id, t.name, t.arguments));
      }
      finish = c.finish_reason;
    }
    Json r = object(meta, options_, final_status(finish), std::move(output), usage_json(usage));
    finished(meta, options_, r);
    return dump(r);
  }

  std::unique_ptr<StreamWriter> stream_writer(const ResponseMeta& meta, bool) const override {
    return std::make_unique<ResponsesWriter>(with_id(meta), options_);
  }

  ApiError context_length_error(int64_t max_len, int64_t prompt_tokens,
                                std::optional<int64_t> max_tokens) const override {
    std::string msg = max_tokens ? str_cat("This model's maximum context length is ", max_len, " tokens. However, you requested ",
                                           prompt_tokens + *max_tokens, " tokens (", prompt_tokens, " in the input, ", *max_tokens,
                                           " in max_output_tokens). Please reduce the length of the input or max_output_tokens.")
                                 : str_cat("This model's maximum context length is ", max_len, " tokens. However, your input "
                                           "resulted in ", prompt_tokens, " tokens. Please reduce the length of the input.");
    ApiError e = error_with_status(400, msg, "context_length_exceeded");
    e.param = "input";
    return e;
  }

 private:
  // A stored response's id is chosen before it runs (its input items are filed under it).
  ResponseMeta with_id(const ResponseMeta& meta) const {
    ResponseMeta m = meta;
    if (!options_.id.empty()) m.id = options_.id;
    return m;
  }

  ResponseOptions options_;
};

}  // namespace

const ResponseRenderer& responses_renderer() {
  static const ResponsesRenderer kResponses{ResponseOptions{}};
  return kResponses;
}

std::shared_ptr<const ResponseRenderer> make_responses_renderer(ResponseOptions options) {
  return std::make_shared<ResponsesRenderer>(std::move(options));
}

}  // namespace kiln::http
