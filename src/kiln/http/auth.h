// API keys for /v1/*: a Bearer token compared in constant time with every configured key.
#pragma once

#include <filesystem>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kiln/core/status.h"
#include "kiln/http/errors.h"
#include "kiln/http/http_types.h"

namespace kiln::http {

class ApiKeys {
 public:
  ApiKeys() = default;
  explicit ApiKeys(std::vector<std::string> keys);
  void add(std::vector<std::string> keys);

  bool enabled() const { return !keys_.empty(); }
  size_t size() const { return keys_.size(); }
  // Checks the Authorization header; the 401 error when it is missing or wrong.
  std::optional<ApiError> check(const HttpRequest& request) const;

 private:
  std::vector<std::string> keys_;
};

// A line of a keys file: the key, then optional per-key rate limits ("rpm=N", "tpm=N"; 0: none).
struct ApiKeyEntry {
  std::string key;
  std::optional<int64_t> rpm, tpm;  // unset: the server's --rate-limit-rpm / --rate-limit-tpm
};

// Keys from a file, one per line: `KEY [rpm=N] [tpm=N]`; blank lines and lines starting with '#'
// are skipped. A file of bare keys (the older format) reads the same.
Result<std::vector<ApiKeyEntry>> read_api_key_entries(const std::filesystem::path& path);
Result<std::vector<std::string>> read_api_key_file(const std::filesystem::path& path);

// "key_" + the first 12 hex digits of the key's SHA-1: how a key is named in jobs, rate limits
// and logs (never the key itself).
std::string key_id(std::string_view key);
// The client a request is counted as: its Bearer key's id when API keys are configured, else its
// address without the port.
std::string client_id(const HttpRequest& request, bool api_keys);

// True when a == b. The time taken depends on the lengths only, never on where they differ.
bool constant_time_equal(const std::string& a, const std::string& b);

}  // namespace kiln::http
