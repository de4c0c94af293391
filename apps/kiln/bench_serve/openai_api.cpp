#include "bench_serve/openai_api.h"

#include "kiln/core/str.h"

namespace kiln::bench_serve {
namespace {

using nlohmann::json;

constexpr size_t kMaxErrorChars = 300;

std::string clip(std::string_view s) {
  if (s.size() <= kMaxErrorChars) return std::string(s);
  return str_cat(s.substr(0, kMaxErrorChars), "...");
}

std::optional<int64_t> int_field(const json& obj, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end() || !it->is_number_integer()) return std::nullopt;
  return it->get<int64_t>();
}

void append_string_field(const json& obj, const char* key, std::string* out) {
  auto it = obj.find(key);
  if (it != obj.end() && it->is_string()) out->append(it->get_ref<const std::string&>());
}

// The error message of an OpenAI envelope ({"error": {"message": ...}}), the bare {"error": "..."}
// some servers send, or vLLM's older {"object": "error", "message": ...}. Empty when none.
std::string error_message(const json& doc) {
  if (!doc.is_object()) return {};
  if (auto it = doc.find("error"); it != doc.end() && !it->is_null()) {
    if (it->is_string()) return clip(it->get_ref<const std::string&>());
    if (it->is_object()) {
      auto m = it->find("message");
      if (m != it->end() && m->is_string()) return clip(m->get_ref<const std::string&>());
    }
    return clip(it->dump());
  }
  if (auto it = doc.find("object"); it != doc.end() && *it == "error") {
    auto m = doc.find("message");
    return m != doc.end() && m->is_string() ? clip(m->get_ref<const std::string&>()) : "error";
  }
  return {};
}

Result<ResponseInfo> read_response(std::string_view text, ApiEndpoint endpoint, bool streamed) {
  json doc = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) {
    return data_loss(str_cat(streamed ? "stream chunk" : "response body", " is not a JSON object: ", clip(text)));
  }
  ResponseInfo info;
  info.error = error_message(doc);
  if (!info.error.empty()) return info;
  if (auto usage = doc.find("usage"); usage != doc.end() && usage->is_object()) {
    info.prompt_tokens = int_field(*usage, "prompt_tokens");
    info.completion_tokens = int_field(*usage, "completion_tokens");
  }
  auto choices = doc.find("choices");
  if (choices == doc.end() || !choices->is_array()) {
    // The final usage chunk of a stream may leave `choices` out; a whole response may not.
    if (streamed && info.completion_tokens) return info;
    return data_loss(str_cat(streamed ? "stream chunk" : "response body", " has no `choices` array: ", clip(text)));
  }
  for (const json& choice : *choices) {
    if (!choice.is_object()) return data_loss(str_cat("`choices` holds a non-object: ", clip(text)));
    if (endpoint == ApiEndpoint::kCompletions) {
      append_string_field(choice, "text", &info.text);
    } else {
      auto msg = choice.find(streamed ? "delta" : "message");
      if (msg != choice.end() && msg->is_object()) {
        // Servers that split reasoning from the answer stream it under one of these names.
        append_string_field(*msg, "reasoning_content", &info.text);
        append_string_field(*msg, "reasoning", &info.text);
        append_string_field(*msg, "content", &info.text);
      }
    }
    if (auto fr = choice.find("finish_reason"); fr != choice.end() && fr->is_string()) {
      info.finish_reason = fr->get<std::string>();
    }
  }
  return info;
}

}  // namespace

std::string_view endpoint_name(ApiEndpoint endpoint) {
  return endpoint == ApiEndpoint::kChat ? "chat" : "completions";
}

std::string_view endpoint_path(ApiEndpoint endpoint) {
  return endpoint == ApiEndpoint::kChat ? "/chat/completions" : "/completions";
}

std::string build_request_body(const RequestSpec& spec, const BodySettings& settings) {
  json body = json::object();
  body["model"] = settings.model;
  if (settings.endpoint == ApiEndpoint::kChat) {
    body["messages"] = spec.messages.is_null()
                           ? json::array({json{{"role", "user"}, {"content", spec.prompt}}})
                           : spec.messages;
  } else {
    body["prompt"] = spec.prompt;
  }
  body["max_tokens"] = spec.max_tokens;
  body["stream"] = settings.stream;
  if (settings.stream) body["stream_options"] = json{{"include_usage", true}};
  if (settings.ignore_eos) body["ignore_eos"] = true;
  if (settings.temperature) body["temperature"] = *settings.temperature;
  if (settings.extra_body.is_object()) body.update(settings.extra_body);
  return body.dump();
}

Result<ResponseInfo> parse_stream_chunk(std::string_view data, ApiEndpoint endpoint) {
  return read_response(data, endpoint, /*streamed=*/true);
}

Result<ResponseInfo> parse_response_body(std::string_view body, ApiEndpoint endpoint) {
  return read_response(body, endpoint, /*streamed=*/false);
}

std::string describe_error_body(std::string_view body) {
  json doc = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!doc.is_discarded()) {
    std::string m = error_message(doc);
    if (!m.empty()) return m;
  }
  return clip(trim(body));
}

}  // namespace kiln::bench_serve
