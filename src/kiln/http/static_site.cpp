#include "kiln/http/static_site.h"

#include "kiln/core/str.h"

namespace kiln::http {

bool is_ui_route(std::string_view path) {
  for (std::string_view r : {"/", "/models", "/playground", "/live", "/jobs"}) {
    if (path == r) return true;
  }
  // A job's page: /jobs/{id}.
  return starts_with(path, "/jobs/") && path.size() > 6 && path.find('/', 6) == std::string_view::npos;
}

namespace {

const StaticAsset* find(std::span<const StaticAsset> assets, std::string_view path) {
  for (const auto& a : assets) {
    if (a.path == path) return &a;
  }
  return nullptr;
}

// If-None-Match: "*" or a comma-separated list of (possibly weak) tags.
bool etag_matches(std::string_view header, std::string_view etag) {
  for (auto& part : split(std::string(header), ',')) {
    std::string_view t = trim(part);
    if (t == "*") return true;
    if (starts_with(t, "W/")) t.remove_prefix(2);
    if (t == etag) return true;
  }
  return false;
}

}  // namespace

std::optional<HttpResponse> serve_static(std::span<const StaticAsset> assets, std::string_view path,
                                         const std::string* if_none_match) {
  const StaticAsset* a = nullptr;
  if (is_ui_route(path)) {
    a = find(assets, "/index.html");
  } else if (starts_with(path, "/assets/")) {
    a = find(assets, path);
  }
  if (a == nullptr) return std::nullopt;
  // Files under /assets/ carry a hash of their content in their name, so they never change;
  // index.html names them, so it is checked again on every load.
  const bool immutable = starts_with(a->path, "/assets/");
  HttpResponse r;
  r.headers = {{"ETag", std::string(a->etag)},
               {"Cache-Control", immutable ? "public, max-age=31536000, immutable" : "no-cache"},
               {"X-Content-Type-Options", "nosniff"}};
  if (!immutable) {
    // The page loads only its own files and talks only to this server; nobody may frame it (so
    // its buttons cannot be clicked through a disguise).
    r.headers.emplace_back("Content-Security-Policy",
                           "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
                           "frame-ancestors 'none'");
    r.headers.emplace_back("X-Frame-Options", "DENY");
  }
  if (if_none_match != nullptr && etag_matches(*if_none_match, a->etag)) {
    r.status = 304;
    r.content_type.clear();
    return r;
  }
  r.status = 200;
  r.content_type = std::string(a->content_type);
  r.body = std::string(a->body);
  return r;
}

}  // namespace kiln::http
