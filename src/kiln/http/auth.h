// API keys for /v1/*: a Bearer token compared in constant time with every configured key.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
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

// Keys from a file, one per line; blank lines and lines starting with '#' are skipped.
Result<std::vector<std::string>> read_api_key_file(const std::filesystem::path& path);

// True when a == b. The time taken depends on the lengths only, never on where they differ.
bool constant_time_equal(const std::string& a, const std::string& b);

}  // namespace kiln::http
