// multipart/form-data (RFC 7578) read from a request body on disk, part by part, in bounded
// memory: each part's bytes go to a sink as they are found, so a 200 MB file part never sits in
// memory.
#pragma once

#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "kiln/core/status.h"

namespace kiln::http {

struct MultipartPart {
  std::string name;      // Content-Disposition's name
  std::string filename;  // its filename (empty for a plain field)
  bool has_filename = false;
};

struct MultipartSink {
  // A part begins; returns an error to stop reading.
  std::function<Status(const MultipartPart&)> begin;
  // Bytes of the current part (called zero or more times).
  std::function<Status(std::string_view)> data;
  std::function<Status()> end;
};

// The boundary parameter of a multipart/form-data Content-Type; nullopt when the type is
// another or the boundary is missing or malformed.
std::optional<std::string> multipart_boundary(std::string_view content_type);

// Reads the body file; InvalidArgument with a client-facing message when it is not well formed.
Status read_multipart(const std::filesystem::path& body, const std::string& boundary, const MultipartSink& sink);

}  // namespace kiln::http
