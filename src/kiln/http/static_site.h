// The web UI's files, built into the binary (docs/ui.md): GET / and the client routes answer
// index.html, GET /assets/... the built files, each with an ETag; a matching If-None-Match
// answers 304. The table itself is generated at build time (cmake/embed_ui.cmake) and handed to
// the App by `kiln serve`, so this layer never depends on the generated code.
#pragma once

#include <optional>
#include <span>
#include <string_view>

#include "kiln/http/http_types.h"

namespace kiln::http {

struct StaticAsset {
  std::string_view path;  // "/index.html", "/assets/index-1a2b3c.js"
  std::string_view content_type;
  std::string_view etag;  // quoted, as sent
  std::string_view body;
};

// The UI's client-side routes: their paths answer index.html (the page picks the view).
bool is_ui_route(std::string_view path);

// The answer to GET `path` from `assets`, or nullopt when the path is not the UI's (so the API's
// 404 stands). `if_none_match` is the request's If-None-Match header, if any.
std::optional<HttpResponse> serve_static(std::span<const StaticAsset> assets, std::string_view path,
                                         const std::string* if_none_match);

}  // namespace kiln::http
