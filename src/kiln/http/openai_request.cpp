#include "kiln/http/openai_request.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "kiln/core/str.h"
#include "kiln/http/json_fields.h"
#include "kiln/pool/registry.h"

namespace kiln::http {

namespace jinja = text::jinja;

namespace {

constexpr int64_t kIntMax = std::numeric_limits<int64_t>::max();

std::optional<ApiError> parse_stop(const Json& body, GenerationParams* p) {
  auto it = body.find("stop");
  if (it == body.end() || it->is_null()) return std::nullopt;
  if (it->is_string()) {
    p->stop.push_back(it->get<std::string>());
  } else if (it->is_array()) {
    if (it->size() > static_cast<size_t>(kMaxStopStrings)) {
      return invalid_param("stop", str_cat("at most ", kMaxStopStrings, " stop sequences are allowed; got ", it->size(),
                                           "."));
    }
    for (const auto& s : *it) {
      if (!s.is_string()) return invalid_type("stop", "a string or an array of strings", "an array holding " + json_type_phrase(s));
      p->stop.push_back(s.get<std::string>());
    }
  } else {
    return invalid_type("stop", "a string or an array of strings", json_type_phrase(*it));
  }
  for (const auto& s : p->stop) {
    if (s.empty()) return invalid_param("stop", "stop sequences must not be empty.");
  }
  return std::nullopt;
}

std::optional<ApiError> parse_logit_bias(const Json& body, GenerationParams* p) {
  auto it = body.find("logit_bias");
  if (it == body.end() || it->is_null()) return std::nullopt;
  if (!it->is_object()) return invalid_type("logit_bias", "an object", json_type_phrase(*it));
  if (it->size() > 1024) return invalid_param("logit_bias", "at most 1024 tokens may be biased.");
  for (auto e = it->begin(); e != it->end(); ++e) {
    const std::string& key = e.key();
    int64_t id = 0;
    bool ok = !key.empty() && key.size() <= 12;
    for (char c : key) ok = ok && c >= '0' && c <= '9';
    if (ok) id = std::stoll(key);
    if (!ok) return invalid_param("logit_bias", str_cat("the key '", echo_value(key), "' is not a token id."));
    if (!e.value().is_number()) {
      return invalid_type("logit_bias", "numbers as values", json_type_phrase(e.value()) + " for token " + key);
    }
    double v = e.value().get<double>();
    if (!std::isfinite(v) || v < -100.0 || v > 100.0) {
      return invalid_param("logit_bias", str_cat("the bias of token ", key, " is ", e.value().dump(),
                                                 "; biases must be between -100 and 100."));
    }
    p->logit_bias.emplace_back(id, v);
  }
  return std::nullopt;
}

// Fields both endpoints share. The logprobs fields differ and are read by each endpoint.
std::optional<ApiError> parse_common(const Json& body, GenerationParams* p) {
  auto model = body.find("model");
  if (model == body.end() || model->is_null()) {
    return invalid_param("model", "you must provide a model parameter.", "missing_required_parameter");
  }
  if (!model->is_string()) return invalid_type("model", "a string", json_type_phrase(*model));
  p->model = model->get<std::string>();

  std::optional<int64_t> max_tokens, max_completion_tokens;
  KILN_API_CHECK(read_int(body, "max_tokens", 1, kIntMax, &max_tokens));
  KILN_API_CHECK(read_int(body, "max_completion_tokens", 1, kIntMax, &max_completion_tokens));
  // Both given and different: which one a client meant is a guess, so neither wins
  // (docs/openai-conformance.md).
  if (max_tokens && max_completion_tokens && *max_tokens != *max_completion_tokens) {
    return invalid_param("max_completion_tokens",
                         str_cat("max_tokens (", *max_tokens, ") and max_completion_tokens (", *max_completion_tokens,
                                 ") disagree: give one of them, or the same value in both."));
  }
  p->max_tokens = max_completion_tokens ? max_completion_tokens : max_tokens;

  KILN_API_CHECK(read_number(body, "temperature", 0.0, 2.0, &p->temperature));
  KILN_API_CHECK(read_number(body, "top_p", 0.0, 1.0, &p->top_p));
  KILN_API_CHECK(read_int(body, "top_k", -1, 1 << 30, &p->top_k));
  KILN_API_CHECK(read_number(body, "min_p", 0.0, 1.0, &p->min_p));
  KILN_API_CHECK(read_number(body, "repetition_penalty", 0.0, 10.0, &p->repetition_penalty, /*lo_exclusive=*/true));
  std::optional<double> presence, frequency;
  KILN_API_CHECK(read_number(body, "presence_penalty", -2.0, 2.0, &presence));
  KILN_API_CHECK(read_number(body, "frequency_penalty", -2.0, 2.0, &frequency));
  p->presence_penalty = presence.value_or(0.0);
  p->frequency_penalty = frequency.value_or(0.0);
  KILN_API_CHECK(read_int(body, "seed", std::numeric_limits<int64_t>::min(), kIntMax, &p->seed));
  KILN_API_CHECK(parse_stop(body, p));
  std::optional<int64_t> n;
  KILN_API_CHECK(read_int(body, "n", 1, kMaxChoices, &n));
  p->n = static_cast<int>(n.value_or(1));
  KILN_API_CHECK(parse_logit_bias(body, p));
  KILN_API_CHECK(read_bool(body, "stream", &p->stream));
  auto so = body.find("stream_options");
  if (so != body.end() && !so->is_null()) {
    if (!so->is_object()) return invalid_type("stream_options", "an object", json_type_phrase(*so));
    if (!p->stream) {
      return invalid_param("stream_options", "The 'stream_options' parameter is only allowed when 'stream' is enabled.");
    }
    auto iu = so->find("include_usage");
    if (iu != so->end() && !iu->is_null()) {
      if (!iu->is_boolean()) return invalid_type("stream_options.include_usage", "a boolean", json_type_phrase(*iu));
      p->include_usage = iu->get<bool>();
    }
  }
  KILN_API_CHECK(read_string(body, "user", &p->user));
  KILN_API_CHECK(read_bool(body, "ignore_eos", &p->ignore_eos));
  auto sti = body.find("stop_token_ids");
  if (sti != body.end() && !sti->is_null()) {
    if (!sti->is_array()) return invalid_type("stop_token_ids", "an array of integers", json_type_phrase(*sti));
    for (const auto& t : *sti) {
      int64_t v = 0;
      if (!json_to_int(t, &v) || v < 0 || v > std::numeric_limits<int32_t>::max()) {
        return invalid_param("stop_token_ids", "every entry must be a non-negative token id.");
      }
      p->stop_token_ids.push_back(static_cast<int32_t>(v));
    }
  }
  auto ka = body.find("keep_alive");
  if (ka != body.end() && !ka->is_null()) {
    if (ka->is_number()) {
      const double secs = ka->get<double>();
      if (!std::isfinite(secs) || std::abs(secs) > 1e12) return invalid_param("keep_alive", "the number of seconds is out of range.");
      p->keep_alive_ms = secs < 0 ? -1 : static_cast<int64_t>(secs * 1000.0);
    } else if (ka->is_string()) {
      auto d = pool::parse_duration(ka->get<std::string>());
      if (!d.is_ok()) return invalid_param("keep_alive", d.status().message());
      p->keep_alive_ms = d->count();
    } else {
      return invalid_type("keep_alive", "a duration string (\"5m\", \"30s\") or a number of seconds",
                          json_type_phrase(*ka));
    }
  }
  KILN_API_CHECK(parse_structured_output(body, &p->structured));
  return std::nullopt;
}

// Content of a message: a string, null, or a list of parts of which only text parts are usable.
std::optional<ApiError> parse_content(const Json& content, size_t index, jinja::Value* out) {
  std::string param = str_cat("messages[", index, "].content");
  if (content.is_null()) {
    *out = jinja::Value(nullptr);
    return std::nullopt;
  }
  if (content.is_string()) {
    *out = jinja::Value(content.get<std::string>());
    return std::nullopt;
  }
  if (!content.is_array()) return invalid_type(param, "a string or an array of content parts", json_type_phrase(content));
  std::string text;
  for (size_t i = 0; i < content.size(); ++i) {
    const Json& part = content[i];
    std::string pparam = str_cat(param, "[", i, "]");
    if (!part.is_object()) return invalid_type(pparam, "an object", json_type_phrase(part));
    auto type = part.find("type");
    if (type == part.end() || !type->is_string()) return invalid_param(pparam + ".type", "a content part needs a type.");
    std::string t = type->get<std::string>();
    if (t == "text") {
      auto tx = part.find("text");
      if (tx == part.end() || !tx->is_string()) {
        return invalid_type(pparam + ".text", "a string", tx == part.end() ? "nothing" : json_type_phrase(*tx));
      }
      if (!text.empty()) text += "\n";
      text += tx->get<std::string>();
    } else if (t == "image_url" || t == "input_image" || t == "image") {
      return invalid_param(pparam + ".type", "this model does not take images; send text content only.",
                           "unsupported_content_type");
    } else if (t == "input_audio" || t == "audio") {
      return invalid_param(pparam + ".type", "this model does not take audio; send text content only.",
                           "unsupported_content_type");
    } else {
      return invalid_param(pparam + ".type", str_cat("'", echo_value(t), "' content parts are not supported; use 'text'."),
                           "unsupported_content_type");
    }
  }
  *out = jinja::Value(std::move(text));
  return std::nullopt;
}

// A tool call's arguments arrive as a JSON string; templates index them as a mapping (as
// transformers' examples do), so a string holding an object is parsed into one.
jinja::Value tool_call_value(const Json& call) {
  if (!call.is_object()) return json_to_value(call);
  Json copy = call;
  auto fn = copy.find("function");
  if (fn != copy.end() && fn->is_object()) {
    auto args = fn->find("arguments");
    if (args != fn->end() && args->is_string()) {
      Json parsed;
      if (!parse_json_value(args->get<std::string>(), &parsed) && parsed.is_object()) (*fn)["arguments"] = parsed;
    }
  }
  return json_to_value(copy);
}

std::optional<ApiError> parse_messages(const Json& body, ChatRequest* out) {
  auto it = body.find("messages");
  if (it == body.end() || it->is_null()) {
    return invalid_param("messages", "you must provide a messages parameter.", "missing_required_parameter");
  }
  if (!it->is_array()) return invalid_type("messages", "an array", json_type_phrase(*it));
  if (it->empty()) return invalid_param("messages", "[] is too short - 'messages' must hold at least one message.");
  std::vector<jinja::Value> messages;
  std::vector<std::pair<size_t, const Json*>> raw_calls;  // (message, its tool_calls as sent)
  for (size_t i = 0; i < it->size(); ++i) {
    const Json& m = (*it)[i];
    std::string param = str_cat("messages[", i, "]");
    if (!m.is_object()) return invalid_type(param, "an object", json_type_phrase(m));
    auto role = m.find("role");
    if (role == m.end() || !role->is_string()) return invalid_param(param + ".role", "each message needs a role.");
    std::string r = role->get<std::string>();
    if (r != "system" && r != "user" && r != "assistant" && r != "tool" && r != "developer" && r != "function") {
      return invalid_param(param + ".role", str_cat("'", echo_value(r),
          "' is not one of ['system', 'assistant', 'user', 'function', 'tool', 'developer']."));
    }
    if (r == "developer") r = "system";  // chat templates know the system role only
    jinja::DictData d;
    d.set(jinja::Value("role"), jinja::Value(r));
    auto content = m.find("content");
    jinja::Value cv(nullptr);
    if (content != m.end()) KILN_API_CHECK(parse_content(*content, i, &cv));
    bool has_tool_calls = m.contains("tool_calls") && m["tool_calls"].is_array() && !m["tool_calls"].empty();
    if (cv.is_none() && r != "assistant") {
      return invalid_param(param + ".content", "only assistant messages may have no content.");
    }
    if (cv.is_none() && !has_tool_calls) return invalid_param(param + ".content", "an assistant message needs content or tool_calls.");
    // Templates test, iterate and concatenate content as a string ('<think>' in content): a null
    // content (an assistant turn of tool calls) is rendered as "", as vLLM and llama.cpp do.
    if (cv.is_none()) cv = jinja::Value(std::string());
    d.set(jinja::Value("content"), cv);
    for (auto f = m.begin(); f != m.end(); ++f) {
      const std::string& k = f.key();
      if (k == "role" || k == "content") continue;
      if (k == "tool_calls") {
        if (!f.value().is_array()) return invalid_type(param + ".tool_calls", "an array", json_type_phrase(f.value()));
        std::vector<jinja::Value> calls;
        for (const auto& c : f.value()) calls.push_back(tool_call_value(c));
        d.set(jinja::Value(k), jinja::Value::list(std::move(calls)));
        raw_calls.emplace_back(i, &f.value());
      } else {
        d.items.emplace_back(jinja::Value(k), json_to_value(f.value()));  // JSON keys are distinct: no search
      }
    }
    messages.push_back(jinja::Value::dict(std::move(d)));
    out->last_role = r;
    out->last_content = cv.is_string() ? cv.str() : std::string();
  }
  if (!raw_calls.empty()) {
    // The same messages with each call's arguments left as the client's strings.
    std::vector<jinja::Value> as_given = messages;  // shared; the messages with calls are replaced
    for (const auto& [i, calls] : raw_calls) {
      jinja::DictData d = as_given[i].dict_data();
      d.set(jinja::Value("tool_calls"), json_to_value(*calls));
      as_given[i] = jinja::Value::dict(std::move(d));
    }
    out->messages_text_arguments = jinja::Value::list(std::move(as_given));
  }
  out->messages = jinja::Value::list(std::move(messages));
  return std::nullopt;
}

bool valid_tool_name(const std::string& n) {
  if (n.empty() || n.size() > 64) return false;
  for (char c : n) {
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-')) return false;
  }
  return true;
}

std::optional<ApiError> parse_one_tool(const Json& t, size_t i, ToolSpec* spec) {
  const std::string param = str_cat("tools[", i, "]");
  if (!t.is_object()) return invalid_type(param, "an object", json_type_phrase(t));
  auto type = t.find("type");
  if (type == t.end() || !type->is_string()) return invalid_param(param + ".type", "each tool needs a type; kiln supports 'function'.", "missing_required_parameter");
  if (type->get<std::string>() != "function") {
    return invalid_param(param + ".type", str_cat("'", echo_value(type->get<std::string>()), "' tools are not supported; use 'function'."),
                         "unsupported_value");
  }
  auto fn = t.find("function");
  if (fn == t.end() || !fn->is_object()) {
    return invalid_type(param + ".function", "an object", fn == t.end() ? "nothing" : json_type_phrase(*fn));
  }
  auto name = fn->find("name");
  if (name == fn->end() || !name->is_string()) {
    return invalid_param(param + ".function.name", "each function needs a name.", "missing_required_parameter");
  }
  spec->name = name->get<std::string>();
  if (!valid_tool_name(spec->name)) {
    return invalid_param(param + ".function.name", str_cat("'", echo_value(spec->name),
        "' does not match '^[a-zA-Z0-9_-]{1,64}$': use 1 to 64 letters, digits, underscores or dashes."));
  }
  KILN_API_CHECK(read_string(*fn, "description", &spec->description));
  KILN_API_CHECK(read_bool(*fn, "strict", &spec->strict));
  spec->parameters_json = "{}";
  auto params = fn->find("parameters");
  if (params != fn->end() && !params->is_null()) {
    if (!params->is_object()) return invalid_type(param + ".function.parameters", "a JSON Schema object", json_type_phrase(*params));
    auto ptype = params->find("type");
    if (ptype != params->end() && !(ptype->is_string() && ptype->get<std::string>() == "object")) {
      return invalid_param(param + ".function.parameters", str_cat("Invalid schema for function '", spec->name,
          "': the parameters must be a JSON Schema of 'type: \"object\"', got 'type: ", echo_value(ptype->dump()), "'."));
    }
    spec->parameters_json = params->dump();
  }
  return std::nullopt;
}

std::optional<ApiError> parse_tools(const Json& body, ChatRequest* out) {
  ToolRequest& tr = out->tool;
  auto it = body.find("tools");
  if (it != body.end() && !it->is_null()) {
    if (!it->is_array()) return invalid_type("tools", "an array", json_type_phrase(*it));
    if (it->size() > kMaxTools) return invalid_param("tools", str_cat("at most ", kMaxTools, " tools are allowed; got ", it->size(), "."));
    for (size_t i = 0; i < it->size(); ++i) {
      ToolSpec spec;
      KILN_API_CHECK(parse_one_tool((*it)[i], i, &spec));
      for (const auto& other : tr.tools) {
        if (other.name == spec.name) {
          return invalid_param(str_cat("tools[", i, "].function.name"), str_cat("the function name '", spec.name,
                                                                                 "' is used by two tools; names must be unique."));
        }
      }
      tr.tools.push_back(std::move(spec));
    }
  }
  auto tc = body.find("tool_choice");
  if (tc != body.end() && !tc->is_null()) {
    if (tc->is_string()) {
      const std::string v = tc->get<std::string>();
      if (v == "none") tr.choice = ToolChoice::kNone;
      else if (v == "auto") tr.choice = ToolChoice::kAuto;
      else if (v == "required") tr.choice = ToolChoice::kRequired;
      else return invalid_param("tool_choice", str_cat("'", echo_value(v), "' is not one of 'none', 'auto', 'required' or a {\"type\": \"function\", \"function\": {\"name\": ...}} object."));
    } else if (tc->is_object()) {
      auto type = tc->find("type");
      auto fn = tc->find("function");
      if (type == tc->end() || !type->is_string() || type->get<std::string>() != "function") {
        return invalid_param("tool_choice.type", "a named tool choice has type 'function'.");
      }
      if (fn == tc->end() || !fn->is_object() || !fn->contains("name") || !(*fn)["name"].is_string()) {
        return invalid_param("tool_choice.function.name", "a named tool choice needs function.name.", "missing_required_parameter");
      }
      tr.choice = ToolChoice::kNamed;
      tr.named = (*fn)["name"].get<std::string>();
    } else {
      return invalid_type("tool_choice", "a string or an object", json_type_phrase(*tc));
    }
    if ((tr.choice == ToolChoice::kRequired || tr.choice == ToolChoice::kNamed) && tr.tools.empty()) {
      return invalid_param("tool_choice", "tool_choice 'required' or a named function is only allowed when tools are specified.");
    }
    if (tr.choice == ToolChoice::kNamed) {
      bool found = false;
      for (const auto& t : tr.tools) found = found || t.name == tr.named;
      if (!found) {
        return invalid_param("tool_choice", str_cat("the function '", echo_value(tr.named), "' named by tool_choice is not among the tools."));
      }
    }
  }
  KILN_API_CHECK(read_bool(body, "parallel_tool_calls", &tr.parallel_tool_calls));
  // tool_choice none: the model is not shown the tools (and its output is not parsed for calls).
  if (tr.offered()) out->tools = json_to_value(*it);
  return std::nullopt;
}

}  // namespace

std::optional<int64_t> completion_budget(int64_t prompt_tokens, int64_t max_len, std::optional<int64_t> max_tokens,
                                         int64_t default_max_tokens) {
  if (prompt_tokens >= max_len) return std::nullopt;
  const int64_t room = max_len - prompt_tokens;
  if (max_tokens) return *max_tokens <= room ? max_tokens : std::nullopt;
  return default_max_tokens > 0 ? std::min(default_max_tokens, room) : room;
}

// Parameters that change what a client expects back and that kiln does not support: refused, never
// ignored (docs/openai-conformance.md).
std::optional<ApiError> refuse_unsupported_chat_fields(const Json& body) {
  auto given = [&](const char* name) {
    auto it = body.find(name);
    return it != body.end() && !it->is_null();
  };
  if (auto m = body.find("modalities"); m != body.end() && !m->is_null()) {
    if (!m->is_array()) return invalid_type("modalities", "an array", json_type_phrase(*m));
    for (const auto& v : *m) {
      if (!v.is_string()) return invalid_type("modalities", "an array of strings", "an array holding " + json_type_phrase(v));
      if (v != "text") {
        return invalid_param("modalities", str_cat("kiln produces text only; '", echo_value(v.get<std::string>()),
                                                   "' is not supported."), "unsupported_value");
      }
    }
  }
  if (given("audio")) return invalid_param("audio", "kiln produces text only: audio output is not supported.", "unsupported_parameter");
  if (given("prediction")) {
    return invalid_param("prediction", "predicted outputs are not supported.", "unsupported_parameter");
  }
  if (given("web_search_options")) {
    return invalid_param("web_search_options", "kiln does not search the web.", "unsupported_parameter");
  }
  for (const char* legacy : {"functions", "function_call"}) {
    if (given(legacy)) {
      return invalid_param(legacy, str_cat("'", legacy, "' is deprecated and not supported: use 'tools' and 'tool_choice'."),
                           "unsupported_parameter");
    }
  }
  return std::nullopt;
}

std::optional<ApiError> parse_chat_request(std::string_view text, ChatRequest* out) {
  Json body;
  KILN_API_CHECK(parse_json_body(text, &body));
  return parse_chat_body(body, out);
}

std::optional<ApiError> parse_chat_body(const Json& body, ChatRequest* out) {
  KILN_API_CHECK(refuse_unsupported_chat_fields(body));
  KILN_API_CHECK(parse_common(body, &out->params));
  KILN_API_CHECK(parse_messages(body, out));
  out->tools = jinja::Value(nullptr);
  KILN_API_CHECK(parse_tools(body, out));
  bool logprobs = false;
  KILN_API_CHECK(read_bool(body, "logprobs", &logprobs));
  std::optional<int64_t> top;
  KILN_API_CHECK(read_int(body, "top_logprobs", 0, kMaxTopLogprobs, &top));
  if (top && !logprobs) return invalid_param("top_logprobs", "'logprobs' must be true when 'top_logprobs' is given.");
  if (logprobs) out->params.num_logprobs = static_cast<int>(top.value_or(0));
  KILN_API_CHECK(read_bool(body, "add_generation_prompt", &out->add_generation_prompt));
  KILN_API_CHECK(read_bool(body, "continue_final_message", &out->continue_final_message));
  if (out->continue_final_message) {
    // vLLM's rule: the reply continues the last (assistant) message instead of opening a new turn.
    if (out->add_generation_prompt) {
      return invalid_param("continue_final_message",
                           "continue_final_message needs add_generation_prompt: false (a new turn cannot continue "
                           "the last message).");
    }
    if (out->last_role != "assistant") {
      return invalid_param("continue_final_message", "the last message must be an assistant message to continue it.");
    }
  }
  std::string effort;
  KILN_API_CHECK(read_string(body, "reasoning_effort", &effort));
  if (!effort.empty()) {
    if (effort != "none" && effort != "minimal" && effort != "low" && effort != "medium" && effort != "high") {
      return invalid_param("reasoning_effort", str_cat("'", echo_value(effort), "' is not one of 'none', 'minimal', 'low', 'medium', 'high'."));
    }
    out->reasoning_effort = effort;
  }
  auto kw = body.find("chat_template_kwargs");
  if (kw != body.end() && !kw->is_null()) {
    if (!kw->is_object()) return invalid_type("chat_template_kwargs", "an object", json_type_phrase(*kw));
    for (auto e = kw->begin(); e != kw->end(); ++e) {
      if (e.key() == "messages" || e.key() == "tools" || e.key() == "add_generation_prompt") {
        return invalid_param("chat_template_kwargs", str_cat("'", echo_value(e.key()), "' is set by the request itself."));
      }
      out->template_kwargs.emplace_back(e.key(), json_to_value(e.value()));
    }
  }
  return std::nullopt;
}

std::optional<ApiError> parse_prompt_inputs(const Json& value, const std::string& param, std::vector<PromptInput>* out) {
  const char* kPromptTypes = "a string, an array of strings, an array of token ids or an array of arrays of token ids";
  auto token_list = [&](const Json& arr, const std::string& where, PromptInput* p) -> std::optional<ApiError> {
    p->is_tokens = true;
    if (arr.empty()) return invalid_param(where, "a token-id prompt must not be empty.");
    for (const auto& t : arr) {
      int64_t v = 0;
      if (!json_to_int(t, &v)) return invalid_type(where, kPromptTypes, "an array holding " + json_type_phrase(t));
      p->tokens.push_back(v);
    }
    return std::nullopt;
  };
  const Json* it = &value;
  if (it->is_string()) {
    out->push_back({false, it->get<std::string>(), {}});
  } else if (it->is_array()) {
    if (it->empty()) return invalid_param(param, "must not be an empty array.");
    const Json& first = (*it)[0];
    if (first.is_number()) {
      PromptInput p;
      KILN_API_CHECK(token_list(*it, param, &p));
      out->push_back(std::move(p));
    } else {
      for (size_t i = 0; i < it->size(); ++i) {
        const Json& e = (*it)[i];
        const std::string item = str_cat(param, "[", i, "]");
        PromptInput p;
        if (e.is_string() && first.is_string()) {
          p.text = e.get<std::string>();
        } else if (e.is_array() && first.is_array()) {
          KILN_API_CHECK(token_list(e, item, &p));
        } else {
          return invalid_type(param, kPromptTypes, "an array mixing " + json_type_phrase(first) + " and " +
                                                          json_type_phrase(e));
        }
        out->push_back(std::move(p));
      }
    }
  } else {
    return invalid_type(param, kPromptTypes, json_type_phrase(*it));
  }
  return std::nullopt;
}

std::optional<ApiError> parse_completion_request(std::string_view text, CompletionRequest* out) {
  Json body;
  KILN_API_CHECK(parse_json_body(text, &body));
  KILN_API_CHECK(parse_common(body, &out->params));
  auto it = body.find("prompt");
  if (it == body.end() || it->is_null()) {
    return invalid_param("prompt", "you must provide a prompt parameter.", "missing_required_parameter");
  }
  KILN_API_CHECK(parse_prompt_inputs(*it, "prompt", &out->prompts));
  if (out->prompts.size() * static_cast<size_t>(out->params.n) > kMaxChoices) {
    return invalid_param("prompt", str_cat("at most ", kMaxChoices, " choices per request: ", out->prompts.size(), " prompts times n=",
                                           out->params.n, " is too many."));
  }
  KILN_API_CHECK(read_bool(body, "echo", &out->echo));
  std::optional<int64_t> logprobs;
  KILN_API_CHECK(read_int(body, "logprobs", 0, kMaxTopLogprobs, &logprobs));
  if (logprobs) out->params.num_logprobs = static_cast<int>(*logprobs);
  if (out->echo && logprobs) {
    return invalid_param("echo", "kiln cannot return logprobs of the prompt: use echo or logprobs, not both.",
                         "unsupported_value");
  }
  std::string suffix;
  KILN_API_CHECK(read_string(body, "suffix", &suffix));
  if (!suffix.empty()) return invalid_param("suffix", "kiln does not support suffix (fill-in-the-middle).", "unsupported_value");
  std::optional<int64_t> best_of;
  KILN_API_CHECK(read_int(body, "best_of", 1, kMaxChoices, &best_of));
  if (best_of && *best_of != out->params.n) {
    return invalid_param("best_of", "kiln supports best_of only equal to n.", "unsupported_value");
  }
  return std::nullopt;
}

}  // namespace kiln::http
