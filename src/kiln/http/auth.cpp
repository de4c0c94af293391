#include "kiln/http/auth.h"

#include "kiln/core/file.h"
#include "kiln/core/str.h"

namespace kiln::http {

ApiKeys::ApiKeys(std::vector<std::string> keys) { add(std::move(keys)); }

void ApiKeys::add(std::vector<std::string> keys) {
  for (auto& k : keys) {
    std::string t(trim(k));
    if (!t.empty()) keys_.push_back(std::move(t));
  }
}

Result<std::vector<std::string>> read_api_key_file(const std::filesystem::path& path) {
  auto text = read_file(path);
  if (!text.is_ok()) return text.status().with_context("api key file");
  std::vector<std::string> keys;
  for (auto& line : split(*text, '\n')) {
    std::string t(trim(line));
    if (t.empty() || t[0] == '#') continue;
    keys.push_back(t);
  }
  if (keys.empty()) return invalid_argument(str_cat("api key file ", path.string(), " holds no key"));
  return keys;
}

bool constant_time_equal(const std::string& a, const std::string& b) {
  // Walk the longer length so that a short guess takes as long as a long one.
  size_t n = std::max(a.size(), b.size());
  unsigned diff = a.size() == b.size() ? 0u : 1u;
  for (size_t i = 0; i < n; ++i) {
    unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff |= static_cast<unsigned>(x ^ y);
  }
  return diff == 0;
}

std::optional<ApiError> ApiKeys::check(const HttpRequest& request) const {
  if (keys_.empty()) return std::nullopt;
  const std::string* auth = request.header("authorization");
  std::string token;
  if (auth != nullptr) {
    std::string_view v = trim(*auth);
    if (v.size() > 7 && ascii_lower(v.substr(0, 7)) == "bearer ") token = std::string(trim(v.substr(7)));
  }
  if (token.empty()) {
    // Anthropic's clients send the key as x-api-key.
    if (const std::string* x = request.header("x-api-key")) token = std::string(trim(*x));
  }
  if (token.empty()) {
    ApiError e = error_with_status(401,
        "You didn't provide an API key. You need to provide your API key in an Authorization header using "
        "Bearer auth (i.e. Authorization: Bearer YOUR_KEY).");
    e.type = "invalid_request_error";
    return e;
  }
  bool ok = false;
  for (const auto& k : keys_) ok |= constant_time_equal(token, k);  // no early exit: check every key
  if (ok) return std::nullopt;
  ApiError e = error_with_status(401, "Incorrect API key provided.", "invalid_api_key");
  e.type = "invalid_request_error";
  return e;
}

}  // namespace kiln::http
