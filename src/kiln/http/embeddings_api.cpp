#include "kiln/http/embeddings_api.h"

#include <bit>
#include <cstring>

#include "kiln/core/str.h"
#include "kiln/http/json_fields.h"

namespace kiln::http {

std::optional<ApiError> parse_embeddings_request(std::string_view text, EmbeddingsRequest* out) {
  Json body;
  KILN_API_CHECK(parse_json_body(text, &body));
  auto model = body.find("model");
  if (model == body.end() || model->is_null()) {
    return invalid_param("model", "you must provide a model parameter.", "missing_required_parameter");
  }
  KILN_API_CHECK(read_string(body, "model", &out->params.model));
  auto input = body.find("input");
  if (input == body.end() || input->is_null()) {
    return invalid_param("input", "you must provide an input parameter.", "missing_required_parameter");
  }
  KILN_API_CHECK(parse_prompt_inputs(*input, "input", &out->inputs));
  if (out->inputs.size() > kMaxEmbeddingInputs) {
    return invalid_param("input", str_cat("at most ", kMaxEmbeddingInputs, " inputs per request, got ",
                                          out->inputs.size(), "."));
  }
  for (size_t i = 0; i < out->inputs.size(); ++i) {
    if (!out->inputs[i].is_tokens && out->inputs[i].text.empty()) {
      return invalid_param(out->inputs.size() == 1 ? std::string("input") : str_cat("input[", i, "]"),
                           "an input must not be an empty string.");
    }
  }
  std::string format = "float";
  KILN_API_CHECK(read_string(body, "encoding_format", &format));
  if (format != "float" && format != "base64") {
    return invalid_param("encoding_format", str_cat("must be 'float' or 'base64', got ", echo_value(format), "."));
  }
  out->base64 = format == "base64";
  KILN_API_CHECK(read_int(body, "dimensions", 1, INT32_MAX, &out->dimensions));
  std::string user;
  KILN_API_CHECK(read_string(body, "user", &user));
  return std::nullopt;
}

std::string base64_encode(std::span<const uint8_t> in) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= in.size(); i += 3) {
    const uint32_t v = (uint32_t{in[i]} << 16) | (uint32_t{in[i + 1]} << 8) | in[i + 2];
    for (int s = 18; s >= 0; s -= 6) out += kAlphabet[(v >> s) & 63];
  }
  if (const size_t rest = in.size() - i; rest > 0) {
    const uint32_t v = (uint32_t{in[i]} << 16) | (rest == 2 ? uint32_t{in[i + 1]} << 8 : 0);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += rest == 2 ? kAlphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

std::string render_embeddings(const std::vector<std::vector<float>>& vectors, bool base64, std::string_view model,
                              int64_t prompt_tokens) {
  static_assert(std::endian::native == std::endian::little, "base64 embeddings are little-endian float32");
  Json data = Json::array();
  for (size_t i = 0; i < vectors.size(); ++i) {
    Json e = {{"object", "embedding"}, {"index", i}};
    if (base64) {
      std::vector<uint8_t> bytes(vectors[i].size() * sizeof(float));
      if (!bytes.empty()) std::memcpy(bytes.data(), vectors[i].data(), bytes.size());
      e["embedding"] = base64_encode(bytes);
    } else {
      e["embedding"] = vectors[i];
    }
    data.push_back(std::move(e));
  }
  Json body = {{"object", "list"},
               {"data", std::move(data)},
               {"model", std::string(model)},
               {"usage", {{"prompt_tokens", prompt_tokens}, {"total_tokens", prompt_tokens}}}};
  return body.dump(-1, ' ', false, Json::error_handler_t::replace);
}

}  // namespace kiln::http
