#include "bench_serve/model_query.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

#include "bench_serve/openai_api.h"
#include "kiln/core/str.h"

namespace kiln::bench_serve {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

// One GET with a deadline over the whole exchange (Beast's timeouts apply to async operations).
asio::awaitable<void> get_models(const Target& target, const std::string& api_key, double timeout_s,
                                 beast::error_code* ec, http::response<http::string_body>* res) {
  constexpr auto tuple = asio::as_tuple(asio::use_awaitable);
  beast::tcp_stream stream(co_await asio::this_coro::executor);
  stream.expires_after(std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      std::chrono::duration<double>(timeout_s)));
  auto [cec, ep] = co_await stream.async_connect(target.endpoints, tuple);
  (void)ep;
  if ((*ec = cec)) co_return;
  http::request<http::empty_body> req{http::verb::get, str_cat(target.api_base, "/models"), 11};
  req.set(http::field::host, target.host_header);
  req.set(http::field::user_agent, "kiln-bench-serve");
  if (!api_key.empty()) req.set(http::field::authorization, str_cat("Bearer ", api_key));
  auto [wec, wn] = co_await http::async_write(stream, req, tuple);
  (void)wn;
  if ((*ec = wec)) co_return;
  beast::flat_buffer buffer;
  auto [rec, rn] = co_await http::async_read(stream, buffer, *res, tuple);
  (void)rn;
  *ec = rec;
}

// The list's "data" array.
Result<nlohmann::json> fetch_models(const Target& target, const std::string& api_key, double timeout_s) {
  asio::io_context ioc;
  beast::error_code ec;
  http::response<http::string_body> res;
  asio::co_spawn(ioc, get_models(target, api_key, timeout_s, &ec, &res), asio::detached);
  ioc.run();
  std::string url = str_cat("http://", target.host_header, target.api_base, "/models");
  if (ec) return unavailable(str_cat("GET ", url, ": ", ec.message()));
  if (res.result_int() != 200) {
    return unavailable(str_cat("GET ", url, ": HTTP ", res.result_int(), ": ", describe_error_body(res.body())));
  }
  nlohmann::json doc = nlohmann::json::parse(res.body(), nullptr, /*allow_exceptions=*/false);
  if (!doc.is_object() || !doc.contains("data") || !doc["data"].is_array())
    return unavailable(str_cat("GET ", url, ": not a model list"));
  return doc["data"];
}

}  // namespace

Result<std::string> fetch_first_model_id(const Target& target, const std::string& api_key, double timeout_s) {
  KILN_ASSIGN_OR_RETURN(nlohmann::json data, fetch_models(target, api_key, timeout_s));
  if (!data.empty() && data[0].is_object() && data[0].contains("id") && data[0]["id"].is_string())
    return data[0]["id"].get<std::string>();
  return unavailable(str_cat("GET http://", target.host_header, target.api_base, "/models: no model listed; pass --model"));
}

std::string fetch_model_device(const Target& target, const std::string& api_key, double timeout_s,
                               const std::string& model) {
  auto data = fetch_models(target, api_key, timeout_s);
  if (!data.is_ok()) return "";
  for (const auto& m : *data) {
    if (m.is_object() && m.value("id", "") == model && m.contains("device") && m["device"].is_string())
      return m["device"].get<std::string>();
  }
  return "";
}

}  // namespace kiln::bench_serve
