#include "kiln/http/openai_response.h"

#include <cmath>
#include <random>

#include <nlohmann/json.hpp>

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
    off += static_cast<int64_t>(e.token.size());
  }
  return {{"tokens", tokens}, {"token_logprobs", lps}, {"top_logprobs", tops}, {"text_offset", offsets}};
}

Json usage_json(const Usage& u) {
  return {{"prompt_tokens", u.prompt_tokens},
          {"completion_tokens", u.completion_tokens},
          {"total_tokens", u.prompt_tokens + u.completion_tokens},
          {"prompt_tokens_details", {{"cached_tokens", u.cached_tokens}}}};
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

}  // namespace

std::string render_chat_completion(const ResponseMeta& meta, const std::vector<ChoiceOutput>& choices,
                                   const Usage& usage) {
  Json j = head(meta, "chat.completion");
  Json cs = Json::array();
  for (const auto& c : choices) {
    Json m = {{"role", "assistant"}, {"content", c.text}, {"refusal", nullptr}};
    cs.push_back({{"index", c.index},
                  {"message", m},
                  {"logprobs", c.with_logprobs ? chat_logprobs(c.logprobs) : Json(nullptr)},
                  {"finish_reason", finish(c.finish_reason)}});
  }
  j["choices"] = cs;
  j["usage"] = usage_json(usage);
  return dump(j);
}

std::string render_chat_chunk(const ResponseMeta& meta, const ChatDelta& d, bool usage_null) {
  Json j = head(meta, "chat.completion.chunk");
  Json delta = Json::object();
  if (d.role) delta["role"] = "assistant";
  if (d.content) delta["content"] = *d.content;
  j["choices"] = Json::array({{{"index", d.index},
                               {"delta", delta},
                               {"logprobs", d.with_logprobs ? chat_logprobs(d.logprobs) : Json(nullptr)},
                               {"finish_reason", finish(d.finish_reason)}}});
  if (usage_null) j["usage"] = nullptr;
  return dump(j);
}

std::string render_chat_usage_chunk(const ResponseMeta& meta, const Usage& usage) {
  Json j = head(meta, "chat.completion.chunk");
  j["choices"] = Json::array();
  j["usage"] = usage_json(usage);
  return dump(j);
}

std::string render_completion(const ResponseMeta& meta, const std::vector<ChoiceOutput>& choices, const Usage& usage) {
  Json j = head(meta, "text_completion");
  Json cs = Json::array();
  for (const auto& c : choices) {
    cs.push_back({{"index", c.index},
                  {"text", c.text},
                  {"logprobs", c.with_logprobs ? completion_logprobs(c.logprobs, c.text_offset) : Json(nullptr)},
                  {"finish_reason", finish(c.finish_reason)}});
  }
  j["choices"] = cs;
  j["usage"] = usage_json(usage);
  return dump(j);
}

std::string render_completion_chunk(const ResponseMeta& meta, const ChoiceOutput& c, bool usage_null) {
  Json j = head(meta, "text_completion");
  j["choices"] = Json::array({{{"index", c.index},
                               {"text", c.text},
                               {"logprobs", c.with_logprobs ? completion_logprobs(c.logprobs, c.text_offset) : Json(nullptr)},
                               {"finish_reason", finish(c.finish_reason)}}});
  if (usage_null) j["usage"] = nullptr;
  return dump(j);
}

std::string render_completion_usage_chunk(const ResponseMeta& meta, const Usage& usage) {
  Json j = head(meta, "text_completion");
  j["choices"] = Json::array();
  j["usage"] = usage_json(usage);
  return dump(j);
}

namespace {
Json model_json(const pool::ModelInfo& m) {
  Json j = {{"id", m.id}, {"object", "model"}, {"created", m.created}, {"owned_by", m.owned_by}};
  if (!m.description.empty()) j["description"] = m.description;
  if (m.max_model_len > 0) j["max_model_len"] = m.max_model_len;
  j["loaded"] = m.loaded;
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
