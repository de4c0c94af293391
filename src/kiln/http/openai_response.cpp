#include "kiln/http/openai_response.h"

#include <cmath>
#include <random>

#include <nlohmann/json.hpp>

#include "kiln/core/str.h"
#include "kiln/http/sse.h"
#include "kiln/text/utf8.h"

namespace kiln::http {

namespace {

using Json = nlohmann::ordered_json;

std::string dump(const Json& j) {
  // Token text can hold partial UTF-8 (a byte-level token alone): replace rather than throw.
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

// JSON has no -inf: a token the sampler could never pick gets OpenAI's floor of -9999.
double finite_logprob(float lp) { return std::isfinite(lp) ? static_cast<double>(lp) : -9999.0; }

Json byte_list(const std::string& s) {
  Json a = Json::array();
  for (unsigned char c : s) a.push_back(static_cast<int>(c));
  return a;
}

Json chat_logprobs(const std::vector<LogprobEntry>& entries) {
  Json content = Json::array();
  for (const auto& e : entries) {
    Json top = Json::array();
    for (const auto& t : e.top) {
      top.push_back({{"token", t.token}, {"logprob", finite_logprob(t.logprob)}, {"bytes", byte_list(t.token)}});
    }
    content.push_back({{"token", e.token}, {"logprob", finite_logprob(e.logprob)}, {"bytes", byte_list(e.token)},
                       {"top_logprobs", top}});
  }
  return {{"content", content}, {"refusal", nullptr}};
}

Json completion_logprobs(const std::vector<LogprobEntry>& entries, int64_t text_offset) {
  Json tokens = Json::array(), lps = Json::array(), tops = Json::array(), offsets = Json::array();
  int64_t off = text_offset;
  for (const auto& e : entries) {
    tokens.push_back(e.token);
    lps.push_back(finite_logprob(e.logprob));
    Json top = Json::object();
    for (const auto& t : e.top) {
      if (!top.contains(t.token)) top[t.token] = finite_logprob(t.logprob);
    }
    tops.push_back(top);
    offsets.push_back(off);
    off += static_cast<int64_t>(text::utf8_code_points(e.token));  // OpenAI counts characters, not bytes
  }
  return {{"tokens", tokens}, {"token_logprobs", lps}, {"top_logprobs", tops}, {"text_offset", offsets}};
}

Json usage_json(const Usage& u, bool chat) {
  Json j = {{"prompt_tokens", u.prompt_tokens},
            {"completion_tokens", u.completion_tokens},
            {"total_tokens", u.prompt_tokens + u.completion_tokens},
            {"prompt_tokens_details", {{"cached_tokens", u.cached_tokens}}}};
  if (chat) j["completion_tokens_details"] = {{"reasoning_tokens", u.reasoning_tokens}};
  return j;
}

Json head(const ResponseMeta& meta, const char* object) {
  Json j;
  j["id"] = meta.id;
  j["object"] = object;
  j["created"] = meta.created;
  j["model"] = meta.model;
  j["system_fingerprint"] = meta.system_fingerprint;
  return j;
}

Json finish(const std::string& reason) { return reason.empty() ? Json(nullptr) : Json(reason); }

// A stream chunk holding one choice.
std::string one_choice_chunk(const ResponseMeta& meta, const char* object, Json choice, bool usage_null) {
  Json j = head(meta, object);
  j["choices"] = Json::array({std::move(choice)});
  if (usage_null) j["usage"] = nullptr;
  return dump(j);
}

// A response, or (with no choices) the stream's closing usage chunk.
std::string with_usage(const ResponseMeta& meta, const char* object, Json choices, const Usage& usage) {
  Json j = head(meta, object);
  j["choices"] = std::move(choices);
  j["usage"] = usage_json(usage, std::string_view(object).starts_with("chat."));
  return dump(j);
}

// How an endpoint words OpenAI's context-length error.
struct ContextWording {
  const char* param;          // "messages" / "prompt"
  const char* prompt_part;    // " in the messages, "
  const char* output_part;    // " in the completion). "
  const char* prompt_alone;   // "messages resulted in "
  const char* reduce_both;    // "messages or completion."
  const char* reduce_prompt;  // "messages."
};

ApiError context_length(const ContextWording& w, int64_t max_len, int64_t prompt_tokens,
                        std::optional<int64_t> max_tokens) {
  std::string msg;
  if (max_tokens) {
    msg = str_cat("This model's maximum context length is ", max_len, " tokens. However, you requested ",
                  prompt_tokens + *max_tokens, " tokens (", prompt_tokens, w.prompt_part, *max_tokens, w.output_part,
                  "Please reduce the length of the ", w.reduce_both);
  } else {
    msg = str_cat("This model's maximum context length is ", max_len, " tokens. However, your ", w.prompt_alone,
                  prompt_tokens, " tokens. Please reduce the length of the ", w.reduce_prompt);
  }
  ApiError e = error_with_status(400, msg, "context_length_exceeded");
  e.param = w.param;
  return e;
}

class ChatRenderer final : public ChunkRenderer {
 public:
  std::string_view prompt_param() const override { return "messages"; }
  std::string_view logprobs_param() const override { return "top_logprobs"; }

  std::optional<std::string> opening_chunk(const ResponseMeta& meta, int index, const std::string*,
                                           bool usage_null) const override {
    return one_choice_chunk(meta, kChunk, choice(index, {{"role", "assistant"}, {"content", ""}}, Json(nullptr), ""),
                            usage_null);
  }

  std::string chunk(const ResponseMeta& meta, const ChoiceDelta& d, bool usage_null) const override {
    Json delta = Json::object();
    if (d.reasoning) delta["reasoning_content"] = *d.reasoning;
    if (d.text) delta["content"] = *d.text;
    if (!d.tool_calls.empty()) {
      Json calls = Json::array();
      for (const auto& c : d.tool_calls) {
        if (c.opens) {
          calls.push_back({{"index", c.index}, {"id", c.id}, {"type", "function"},
                           {"function", {{"name", c.name}, {"arguments", c.arguments}}}});
        } else {
          calls.push_back({{"index", c.index}, {"function", {{"arguments", c.arguments}}}});
        }
      }
      delta["tool_calls"] = std::move(calls);
    }
    Json lp = d.with_logprobs ? chat_logprobs(d.logprobs) : Json(nullptr);
    return one_choice_chunk(meta, kChunk, choice(d.index, std::move(delta), std::move(lp), d.finish_reason), usage_null);
  }

  std::string usage_chunk(const ResponseMeta& meta, const Usage& usage) const override {
    return with_usage(meta, kChunk, Json::array(), usage);
  }

  std::string response(const ResponseMeta& meta, const std::vector<ChoiceOutput>& choices,
                       const Usage& usage) const override {
    Json cs = Json::array();
    for (const auto& c : choices) {
      const bool null_content = c.text.empty() && (!c.tool_calls.empty() || !c.reasoning.empty());
      Json m = {{"role", "assistant"}, {"content", null_content ? Json(nullptr) : Json(c.text)}, {"refusal", nullptr}};
      if (!c.reasoning.empty()) m["reasoning_content"] = c.reasoning;
      if (!c.tool_calls.empty()) {
        Json calls = Json::array();
        for (const auto& t : c.tool_calls) {
          calls.push_back({{"id", t.id}, {"type", "function"}, {"function", {{"name", t.name}, {"arguments", t.arguments}}}});
        }
        m["tool_calls"] = std::move(calls);
      }
      cs.push_back({{"index", c.index},
                    {"message", m},
                    {"logprobs", c.with_logprobs ? chat_logprobs(c.logprobs) : Json(nullptr)},
                    {"finish_reason", finish(c.finish_reason)}});
    }
    return with_usage(meta, "chat.completion", std::move(cs), usage);
  }

  ApiError context_length_error(int64_t max_len, int64_t prompt_tokens,
                                std::optional<int64_t> max_tokens) const override {
    static constexpr ContextWording kWording{"messages", " in the messages, ", " in the completion). ",
                                             "messages resulted in ", "messages or completion.", "messages."};
    return context_length(kWording, max_len, prompt_tokens, max_tokens);
  }

 private:
  static constexpr const char* kChunk = "chat.completion.chunk";

  static Json choice(int index, Json delta, Json logprobs, const std::string& reason) {
    return {{"index", index}, {"delta", std::move(delta)}, {"logprobs", std::move(logprobs)}, {"finish_reason", finish(reason)}};
  }
};

class CompletionRenderer final : public ChunkRenderer {
 public:
  std::string_view prompt_param() const override { return "prompt"; }
  std::string_view logprobs_param() const override { return "logprobs"; }

  std::optional<std::string> opening_chunk(const ResponseMeta& meta, int index, const std::string* echo,
                                           bool usage_null) const override {
    if (echo == nullptr) return std::nullopt;
    return one_choice_chunk(meta, kObject, choice(index, *echo, Json(nullptr), ""), usage_null);
  }

  std::string chunk(const ResponseMeta& meta, const ChoiceDelta& d, bool usage_null) const override {
    Json lp = d.with_logprobs ? completion_logprobs(d.logprobs, d.text_offset) : Json(nullptr);
    return one_choice_chunk(meta, kObject, choice(d.index, d.text.value_or(""), std::move(lp), d.finish_reason),
                            usage_null);
  }

  std::string usage_chunk(const ResponseMeta& meta, const Usage& usage) const override {
    return with_usage(meta, kObject, Json::array(), usage);
  }

  std::string response(const ResponseMeta& meta, const std::vector<ChoiceOutput>& choices,
                       const Usage& usage) const override {
    Json cs = Json::array();
    for (const auto& c : choices) {
      Json lp = c.with_logprobs ? completion_logprobs(c.logprobs, c.text_offset) : Json(nullptr);
      cs.push_back(choice(c.index, c.text, std::move(lp), c.finish_reason));
    }
    return with_usage(meta, kObject, std::move(cs), usage);
  }

  ApiError context_length_error(int64_t max_len, int64_t prompt_tokens,
                                std::optional<int64_t> max_tokens) const override {
    static constexpr ContextWording kWording{"prompt", " in your prompt; ", " for the completion). ",
                                             "prompt resulted in ", "prompt or completion.", "prompt."};
    return context_length(kWording, max_len, prompt_tokens, max_tokens);
  }

 private:
  static constexpr const char* kObject = "text_completion";

  static Json choice(int index, const std::string& text, Json logprobs, const std::string& reason) {
    return {{"index", index}, {"text", text}, {"logprobs", std::move(logprobs)}, {"finish_reason", finish(reason)}};
  }
};

// Chunks stand alone: the writer only carries what every chunk repeats.
class ChunkWriter final : public StreamWriter {
 public:
  ChunkWriter(const ChunkRenderer& api, ResponseMeta meta, bool include_usage)
      : api_(api), meta_(std::move(meta)), include_usage_(include_usage) {}

  std::string open(int index, const std::string* echo) override {
    auto c = api_.opening_chunk(meta_, index, echo, include_usage_);
    return c ? sse_data(*c) : std::string();
  }
  std::string delta(const ChoiceDelta& d) override { return sse_data(api_.chunk(meta_, d, include_usage_)); }
  std::string end(const Usage& usage) override {
    std::string out = include_usage_ ? sse_data(api_.usage_chunk(meta_, usage)) : std::string();
    return out + sse_done();
  }
  std::string error(const ApiError& e) override { return sse_data(error_body(e)); }

 private:
  const ChunkRenderer& api_;
  ResponseMeta meta_;
  bool include_usage_;
};

}  // namespace

std::unique_ptr<StreamWriter> ChunkRenderer::stream_writer(const ResponseMeta& meta, bool include_usage) const {
  return std::make_unique<ChunkWriter>(*this, meta, include_usage);
}

const ChunkRenderer& chat_renderer() {
  static const ChatRenderer kChat;
  return kChat;
}

const ChunkRenderer& completion_renderer() {
  static const CompletionRenderer kCompletion;
  return kCompletion;
}

namespace {
Json model_json(const pool::ModelInfo& m) {
  Json j = {{"id", m.id}, {"object", "model"}, {"created", m.created}, {"owned_by", m.owned_by}};
  if (!m.description.empty()) j["description"] = m.description;
  if (m.max_model_len > 0) j["max_model_len"] = m.max_model_len;
  j["loaded"] = m.loaded;
  j["kind"] = std::string(model::model_kind_name(m.kind));
  if (!m.device.empty()) j["device"] = m.device;
  return j;
}
}  // namespace

std::string render_model(const pool::ModelInfo& m) { return dump(model_json(m)); }

std::string render_model_list(const std::vector<pool::ModelInfo>& models) {
  Json data = Json::array();
  for (const auto& m : models) data.push_back(model_json(m));
  return dump(Json{{"object", "list"}, {"data", data}});
}

std::string make_completion_id(const char* prefix) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  static const char* kChars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  std::string id = prefix;
  for (int i = 0; i < 24; ++i) id += kChars[rng() % 62];
  return id;
}

}  // namespace kiln::http
