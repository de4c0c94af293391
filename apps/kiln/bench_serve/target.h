// The one server a benchmark talks to: parsed from --url and resolved once, so every connection
// goes to the address the user gave and nowhere else.
#pragma once

#include <string>
#include <string_view>

#include <boost/asio/ip/tcp.hpp>

#include "bench_serve/openai_api.h"
#include "kiln/core/status.h"

namespace kiln::bench_serve {

struct Target {
  std::string host;         // as written in the URL, without brackets
  std::string port;
  std::string host_header;  // the Host header: host[:port] as written
  std::string api_base;     // path prefix of the API, "/v1" or "/proxy/v1"
  boost::asio::ip::tcp::resolver::results_type endpoints;

  // The request target for an endpoint: api_base + "/chat/completions".
  std::string path(ApiEndpoint endpoint) const;
};

// Parses "http://host[:port][/prefix]". The API lives under "/v1" below the prefix unless the
// prefix already ends with it. https is refused with a clear message (kiln speaks plain HTTP;
// put a TLS proxy in front for remote servers).
Result<Target> parse_base_url(std::string_view url);

// Resolves the host once; connections use only the addresses found here.
Status resolve_target(Target* target);

}  // namespace kiln::bench_serve
