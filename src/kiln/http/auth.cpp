#include "kiln/http/auth.h"

#include <boost/uuid/detail/sha1.hpp>

#include <cstdio>
#include <cstdlib>

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

Result<std::vector<ApiKeyEntry>> read_api_key_entries(const std::filesystem::path& path) {
  auto text = read_file(path);
  if (!text.is_ok()) return text.status().with_context("api key file");
  std::vector<ApiKeyEntry> keys;
  int line_no = 0;
  for (auto& line : split(*text, '\n')) {
    ++line_no;
    std::string t(trim(line));
    if (t.empty() || t[0] == '#') continue;
    for (char& c : t) {
      if (c == '\t') c = ' ';
    }
    ApiKeyEntry e;
    for (auto& word : split(t, ' ')) {
      if (word.empty()) continue;
      if (e.key.empty()) {
        e.key = word;
        continue;
      }
      const size_t eq = word.find('=');
      const std::string name = word.substr(0, eq);
      int64_t v = -1;
      if (eq != std::string::npos) {
        const std::string num = word.substr(eq + 1);
        char* end = nullptr;
        v = std::strtoll(num.c_str(), &end, 10);
        if (num.empty() || *end != '\0' || v < 0) v = -1;
      }
      if ((name != "rpm" && name != "tpm") || v < 0) {
        return invalid_argument(str_cat("api key file ", path.string(), " line ", line_no, ": expected KEY [rpm=N] [tpm=N], got '",
                                        word.substr(0, 40), "'"));
      }
      (name == "rpm" ? e.rpm : e.tpm) = v;
    }
    keys.push_back(std::move(e));
  }
  if (keys.empty()) return invalid_argument(str_cat("api key file ", path.string(), " holds no key"));
  return keys;
}

Result<std::vector<std::string>> read_api_key_file(const std::filesystem::path& path) {
  auto entries = read_api_key_entries(path);
  if (!entries.is_ok()) return entries.status();
  std::vector<std::string> keys;
  for (auto& e : *entries) keys.push_back(std::move(e.key));
  return keys;
}

std::string key_id(std::string_view key) {
  boost::uuids::detail::sha1 h;
  h.process_bytes(key.data(), key.size());
  boost::uuids::detail::sha1::digest_type d;
  h.get_digest(d);
  char hex[16];
  std::snprintf(hex, sizeof(hex), "%08x%04x", d[0], d[1] >> 16);
  return std::string("key_") + hex;
}

std::string client_id(const HttpRequest& request, bool api_keys) {
  const std::string* auth = request.header("authorization");
  if (auth == nullptr) auth = request.header("x-api-key");  // Anthropic's clients
  if (!api_keys || auth == nullptr) {
    // "address:port": the port changes with every connection, the client does not.
    const size_t colon = request.remote.rfind(':');
    return colon == std::string::npos ? request.remote : request.remote.substr(0, colon);
  }
  std::string_view key = trim(*auth);
  if (starts_with(ascii_lower(key.substr(0, 7)), "bearer ")) key = trim(key.substr(7));
  return key_id(key);
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
