#include "bench_serve/target.h"

#include <boost/asio/io_context.hpp>

#include "kiln/core/str.h"

namespace kiln::bench_serve {

std::string Target::path(ApiEndpoint endpoint) const { return str_cat(api_base, endpoint_path(endpoint)); }

Result<Target> parse_base_url(std::string_view url) {
  std::string_view rest = url;
  if (starts_with(rest, "https://")) {
    return invalid_argument(str_cat("--url ", url, ": https is not supported; use http:// (a TLS proxy may sit in front)"));
  }
  if (!starts_with(rest, "http://")) return invalid_argument(str_cat("--url ", url, ": must start with http://"));
  rest.remove_prefix(7);
  size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? std::string_view() : rest.substr(slash);
  if (authority.empty()) return invalid_argument(str_cat("--url ", url, ": no host"));
  if (authority.find('@') != std::string_view::npos) {
    return invalid_argument(str_cat("--url ", url, ": credentials in the URL are not supported; use --api-key"));
  }
  Target t;
  t.host_header = std::string(authority);
  std::string_view host = authority;
  std::string_view port;
  if (host.front() == '[') {  // IPv6 literal
    size_t close = host.find(']');
    if (close == std::string_view::npos) return invalid_argument(str_cat("--url ", url, ": unclosed '[' in host"));
    std::string_view after = host.substr(close + 1);
    host = host.substr(1, close - 1);
    if (!after.empty()) {
      if (after.front() != ':') return invalid_argument(str_cat("--url ", url, ": junk after IPv6 address"));
      port = after.substr(1);
    }
  } else if (size_t colon = host.rfind(':'); colon != std::string_view::npos) {
    port = host.substr(colon + 1);
    host = host.substr(0, colon);
  }
  if (host.empty()) return invalid_argument(str_cat("--url ", url, ": no host"));
  if (port.empty()) port = "80";
  for (char c : port) {
    if (c < '0' || c > '9') return invalid_argument(str_cat("--url ", url, ": port '", port, "' is not a number"));
  }
  if (port.size() > 5 || std::stoi(std::string(port)) > 65535 || std::stoi(std::string(port)) == 0) {
    return invalid_argument(str_cat("--url ", url, ": port ", port, " is out of range"));
  }
  if (path.find_first_of("?#") != std::string_view::npos) {
    return invalid_argument(str_cat("--url ", url, ": a query or fragment is not allowed in the base URL"));
  }
  while (!path.empty() && path.back() == '/') path.remove_suffix(1);
  t.host = std::string(host);
  t.port = std::string(port);
  t.api_base = ends_with(path, "/v1") ? std::string(path) : str_cat(path, "/v1");
  return t;
}

Status resolve_target(Target* target) {
  boost::asio::io_context ioc;
  boost::asio::ip::tcp::resolver resolver(ioc);
  boost::system::error_code ec;
  target->endpoints = resolver.resolve(target->host, target->port, ec);
  if (ec) return unavailable(str_cat("cannot resolve ", target->host, ":", target->port, ": ", ec.message()));
  if (target->endpoints.empty()) return unavailable(str_cat("no address for ", target->host));
  return Status::ok();
}

}  // namespace kiln::bench_serve
