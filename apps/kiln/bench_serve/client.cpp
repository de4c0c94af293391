#include "bench_serve/client.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <optional>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/http/buffer_body.hpp>

#include "bench_serve/sse.h"
#include "kiln/core/str.h"

namespace kiln::bench_serve {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using Parser = http::response_parser<http::buffer_body>;

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
constexpr size_t kMaxErrorBody = 1u << 20;
constexpr size_t kMaxWholeBody = 64u << 20;
constexpr size_t kReadChunk = 16384;

double seconds(SteadyTime a, SteadyTime b) { return std::chrono::duration<double>(b - a).count(); }

bool is_stale_connection_error(const beast::error_code& ec) {
  return ec == http::error::end_of_stream || ec == asio::error::eof || ec == asio::error::connection_reset ||
         ec == asio::error::broken_pipe || ec == http::error::partial_message;
}

// Everything one request needs while it runs; the coroutine below fills `rec`.
struct Exchange {
  ConnectionPool& pool;
  const Target& target;
  const ClientSettings& settings;
  RequestRecord rec;
  SteadyTime deadline;
  Connection* conn = nullptr;
  std::optional<Parser> parser;
  SteadyTime last_content;

  bool stopping() const { return settings.stopping && settings.stopping->load(std::memory_order_relaxed); }

  void fail(ErrorKind kind, std::string message) {
    // Closing the sockets to stop a run breaks the transport; what the server said still counts.
    if (stopping() && kind != ErrorKind::kHttpStatus && kind != ErrorKind::kServerError) {
      kind = ErrorKind::kCancelled;
      message = "the run was stopped";
    }
    rec.error = kind;
    rec.error_message = std::move(message);
  }

  void fail_io(const beast::error_code& ec, std::string_view during) {
    if (ec == beast::error::timeout) {
      fail(ErrorKind::kTimeout, str_cat("no complete response within ", settings.timeout_s, " s (", during, ")"));
    } else {
      fail(ErrorKind::kIo, str_cat(during, ": ", ec.message()));
    }
  }

  // Hands the connection back and stamps the end time.
  void finish(bool reusable) {
    rec.finished = SteadyTime::clock::now();
    rec.e2e_s = seconds(rec.started, rec.finished);
    if (conn) {
      reusable = reusable && rec.ok() && parser && parser->is_done() && parser->keep_alive();
      pool.release(conn, reusable);
      conn = nullptr;
    }
  }

  // Reads the next piece of the body into `buf`. A full buffer is not an error.
  asio::awaitable<std::pair<beast::error_code, size_t>> read_body_some(char* buf, size_t size) {
    parser->get().body().data = buf;
    parser->get().body().size = size;
    conn->stream.expires_at(deadline);
    auto [ec, n] = co_await http::async_read_some(conn->stream, conn->buffer, *parser, kTuple);
    (void)n;
    if (ec == http::error::need_buffer) ec = {};
    co_return std::pair{ec, size - parser->get().body().size};
  }

  // Reads the rest of the body into a string of at most `limit` bytes.
  asio::awaitable<bool> read_whole_body(size_t limit, std::string* out) {
    std::array<char, kReadChunk> buf;
    while (!parser->is_done()) {
      auto [ec, n] = co_await read_body_some(buf.data(), buf.size());
      out->append(buf.data(), n);
      if (ec) {
        fail_io(ec, "reading the response body");
        co_return false;
      }
      if (out->size() > limit) {
        fail(ErrorKind::kMalformed, str_cat("response body larger than ", limit, " bytes"));
        co_return false;
      }
    }
    co_return true;
  }

  void on_output(const ResponseInfo& info, SteadyTime t) {
    if (!info.text.empty()) {
      if (rec.content_chunks == 0) {
        rec.ttft_s = seconds(rec.started, t);
      } else {
        rec.itl_s.push_back(static_cast<float>(seconds(last_content, t)));
      }
      last_content = t;
      ++rec.content_chunks;
    }
    if (info.completion_tokens) {
      rec.usage_seen = true;
      rec.output_tokens = *info.completion_tokens;
    }
    if (info.prompt_tokens) rec.prompt_tokens = *info.prompt_tokens;
    if (!info.finish_reason.empty()) rec.finish_reason = info.finish_reason;
  }

  // Handles one SSE event. Returns false when the request has failed.
  bool on_event(const SseEvent& ev, SteadyTime t, bool* done) {
    if (*done) return true;  // nothing counts after [DONE]
    if (ev.data == "[DONE]") {
      *done = true;
      return true;
    }
    if (ev.event == "error") {
      fail(ErrorKind::kServerError, describe_error_body(ev.data));
      return false;
    }
    auto info = parse_stream_chunk(ev.data, settings.endpoint);
    if (!info.is_ok()) {
      fail(ErrorKind::kMalformed, info.status().message());
      return false;
    }
    if (!info->error.empty()) {
      fail(ErrorKind::kServerError, info->error);
      return false;
    }
    on_output(*info, t);
    return true;
  }

  asio::awaitable<void> read_stream() {
    std::array<char, kReadChunk> buf;
    SseParser sse;
    std::vector<SseEvent> events;
    bool done = false;
    while (!parser->is_done()) {
      auto [ec, n] = co_await read_body_some(buf.data(), buf.size());
      SteadyTime t = SteadyTime::clock::now();
      if (n > 0) {
        if (Status s = sse.feed(std::string_view(buf.data(), n), &events); !s.is_ok()) {
          fail(ErrorKind::kMalformed, s.message());
          co_return;
        }
        for (const SseEvent& ev : events) {
          if (!on_event(ev, t, &done)) co_return;
        }
        events.clear();
      }
      if (ec) {
        fail_io(ec, "connection lost mid-stream");
        co_return;
      }
    }
    if (!done) {
      fail(ErrorKind::kMalformed, sse.has_pending_event() ? "the stream ended inside an event"
                                                          : "the stream ended without `data: [DONE]`");
    }
  }

  asio::awaitable<void> read_json() {
    std::string body;
    if (!co_await read_whole_body(kMaxWholeBody, &body)) co_return;
    SteadyTime t = SteadyTime::clock::now();
    auto info = parse_response_body(body, settings.endpoint);
    if (!info.is_ok()) {
      fail(ErrorKind::kMalformed, info.status().message());
      co_return;
    }
    if (!info->error.empty()) {
      fail(ErrorKind::kServerError, info->error);
      co_return;
    }
    on_output(*info, t);
  }

  // Connects (when needed), writes the request and reads the response header. Returns false
  // when the request has failed.
  asio::awaitable<bool> send(http::request<http::string_body>& req) {
    for (int attempt = 0;; ++attempt) {
      conn = pool.acquire();
      bool reused = conn->connected;
      if (!conn->connected) {
        conn->stream.expires_at(deadline);
        auto [ec, ep] = co_await conn->stream.async_connect(target.endpoints, kTuple);
        (void)ep;
        if (ec) {
          fail(ErrorKind::kConnect, str_cat("connect to ", target.host_header, ": ",
                                            ec == beast::error::timeout ? "timed out" : ec.message()));
          co_return false;
        }
        conn->connected = true;
        beast::error_code ignored;
        conn->stream.socket().set_option(asio::ip::tcp::no_delay(true), ignored);
      }
      conn->stream.expires_at(deadline);
      auto [wec, wn] = co_await http::async_write(conn->stream, req, kTuple);
      (void)wn;
      beast::error_code ec = wec;
      if (!ec) {
        parser.emplace();
        parser->body_limit(boost::none);  // streams are long; read_whole_body applies its own limit
        auto [hec, hn] = co_await http::async_read_header(conn->stream, conn->buffer, *parser, kTuple);
        (void)hn;
        if (!hec) co_return true;
        ec = hec;
      }
      // A kept-alive connection that the server closed while it sat idle fails at once: retry
      // the request once on a fresh connection rather than count the server's idle timeout.
      if (reused && attempt == 0 && is_stale_connection_error(ec) && !stopping()) {
        pool.release(conn, false);
        conn = nullptr;
        parser.reset();
        continue;
      }
      fail_io(ec, "sending the request");
      co_return false;
    }
  }
};

}  // namespace

std::string_view error_kind_name(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kNone: return "none";
    case ErrorKind::kConnect: return "connect";
    case ErrorKind::kTimeout: return "timeout";
    case ErrorKind::kHttpStatus: return "http_status";
    case ErrorKind::kServerError: return "server_error";
    case ErrorKind::kMalformed: return "malformed";
    case ErrorKind::kIo: return "io";
    case ErrorKind::kCancelled: return "cancelled";
  }
  return "unknown";
}

double RequestRecord::tpot_s() const {
  if (output_tokens < 2) return 0;
  return (e2e_s - ttft_s) / static_cast<double>(output_tokens - 1);
}

Connection* ConnectionPool::acquire() {
  if (!idle_.empty()) {
    Connection* c = idle_.back();
    idle_.pop_back();
    return c;
  }
  all_.push_back(std::make_unique<Connection>(ex_));
  ++opened_;
  return all_.back().get();
}

void ConnectionPool::release(Connection* c, bool reusable) {
  if (reusable && c->stream.socket().is_open()) {
    idle_.push_back(c);
    return;
  }
  beast::error_code ignored;
  c->stream.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
  c->stream.close();
  all_.remove_if([c](const std::unique_ptr<Connection>& p) { return p.get() == c; });
}

void ConnectionPool::close_all() {
  for (auto& c : all_) {
    c->stream.close();
    c->connected = false;
  }
  // Busy connections stay listed until their request releases them; idle ones go now.
  for (Connection* c : idle_) {
    all_.remove_if([c](const std::unique_ptr<Connection>& p) { return p.get() == c; });
  }
  idle_.clear();
}

asio::awaitable<RequestRecord> send_request(ConnectionPool& pool, const Target& target,
                                            const ClientSettings& settings, std::string body,
                                            const RequestSpec& spec) {
  Exchange x{pool, target, settings, {}, {}, nullptr, std::nullopt, {}};
  x.rec.started = SteadyTime::clock::now();
  x.rec.max_tokens = spec.max_tokens;
  x.rec.prompt_tokens_hint = spec.prompt_tokens_hint;
  x.deadline = x.rec.started + std::chrono::duration_cast<SteadyTime::duration>(
                                   std::chrono::duration<double>(settings.timeout_s));

  http::request<http::string_body> req{http::verb::post, target.path(settings.endpoint), 11};
  req.set(http::field::host, target.host_header);
  req.set(http::field::user_agent, "kiln-bench-serve");
  req.set(http::field::content_type, "application/json");
  req.set(http::field::accept, settings.stream ? "text/event-stream" : "application/json");
  if (!settings.api_key.empty()) req.set(http::field::authorization, str_cat("Bearer ", settings.api_key));
  req.keep_alive(true);
  req.body() = std::move(body);
  req.prepare_payload();

  if (!co_await x.send(req)) {
    x.finish(false);
    co_return std::move(x.rec);
  }
  x.rec.http_status = static_cast<int>(x.parser->get().result_int());
  if (x.rec.http_status != 200) {
    std::string err_body;
    bool complete = co_await x.read_whole_body(kMaxErrorBody, &err_body);
    x.rec.error = ErrorKind::kNone;  // the status is the error even when its body was cut short
    x.fail(ErrorKind::kHttpStatus, str_cat("HTTP ", x.rec.http_status, ": ", describe_error_body(err_body)));
    // The connection survives an error status when its body was read to the end.
    bool reusable = complete && x.parser->keep_alive();
    x.rec.finished = SteadyTime::clock::now();
    x.rec.e2e_s = seconds(x.rec.started, x.rec.finished);
    pool.release(x.conn, reusable);
    co_return std::move(x.rec);
  }
  std::string content_type(x.parser->get()[http::field::content_type]);
  std::transform(content_type.begin(), content_type.end(), content_type.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  // A server that ignores `stream: true` answers with one JSON body; read it as such.
  bool streamed = settings.stream && starts_with(content_type, "text/event-stream");
  if (streamed) {
    co_await x.read_stream();
  } else {
    co_await x.read_json();
  }
  x.finish(true);
  if (!streamed) x.rec.ttft_s = x.rec.e2e_s;  // a whole response: its first token is its last
  if (x.rec.ok() && !x.rec.usage_seen) x.rec.output_tokens = x.rec.content_chunks;
  co_return std::move(x.rec);
}

}  // namespace kiln::bench_serve
