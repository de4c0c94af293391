// One OpenAI request over a kept-alive HTTP/1.1 connection, timed as the bytes arrive: time to
// first token, the gaps between content chunks, end-to-end latency and the token counts.
#pragma once

#include <atomic>
#include <cstdint>
#include <list>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>

#include "bench_serve/openai_api.h"
#include "bench_serve/target.h"
#include "kiln/core/clock.h"

namespace kiln::bench_serve {

enum class ErrorKind {
  kNone,
  kConnect,      // no connection could be made
  kTimeout,      // the request ran past --request-timeout
  kHttpStatus,   // the server answered with a status other than 200
  kServerError,  // a 200 stream that carried an error event
  kMalformed,    // a response that does not parse as the OpenAI API
  kIo,           // the connection failed mid-request
  kCancelled,    // the run was stopped (SIGINT) while the request was in flight
};

std::string_view error_kind_name(ErrorKind kind);

struct RequestRecord {
  SteadyTime started;   // when the request was issued (before any connect)
  SteadyTime finished;  // when its response was completely read (or it failed)
  int64_t index = -1;   // its number in the workload
  bool warmup = false;
  int max_tokens = 0;
  int prompt_tokens_hint = 0;
  ErrorKind error = ErrorKind::kNone;
  int http_status = 0;
  std::string error_message;

  double ttft_s = 0;           // to the first content chunk (a whole response: its latency)
  double e2e_s = 0;
  std::vector<float> itl_s;    // gaps between consecutive content chunks
  int64_t content_chunks = 0;
  int64_t prompt_tokens = 0;   // from usage; 0 when the server sent none
  int64_t output_tokens = 0;   // from usage, else the number of content chunks
  bool usage_seen = false;
  std::string finish_reason;

  bool ok() const { return error == ErrorKind::kNone; }
  // (e2e - ttft) / (output_tokens - 1); 0 when fewer than two tokens came back.
  double tpot_s() const;
};

struct Connection {
  explicit Connection(const boost::asio::any_io_executor& ex) : stream(ex) {}
  boost::beast::tcp_stream stream;
  boost::beast::flat_buffer buffer;
  bool connected = false;
};

// The connections of one I/O thread. Only that thread touches it.
class ConnectionPool {
 public:
  explicit ConnectionPool(boost::asio::any_io_executor ex) : ex_(std::move(ex)) {}

  // An idle kept-alive connection, or a new unconnected one.
  Connection* acquire();
  // Returns a connection after a request: kept for reuse, or closed and dropped.
  void release(Connection* c, bool reusable);
  // Closes every socket, idle or busy, so in-flight requests end at once (stopping a run).
  void close_all();
  int64_t connections_opened() const { return opened_; }

 private:
  boost::asio::any_io_executor ex_;
  std::list<std::unique_ptr<Connection>> all_;
  std::vector<Connection*> idle_;
  int64_t opened_ = 0;
};

struct ClientSettings {
  ApiEndpoint endpoint = ApiEndpoint::kChat;
  bool stream = true;
  std::string api_key;
  double timeout_s = 600;
  const std::atomic<bool>* stopping = nullptr;  // set when the run is being stopped
};

// Sends one request (an already built JSON body) and measures it. Never throws; every failure
// ends up in the record's error fields.
boost::asio::awaitable<RequestRecord> send_request(ConnectionPool& pool, const Target& target,
                                                   const ClientSettings& settings, std::string body,
                                                   const RequestSpec& spec);

}  // namespace kiln::bench_serve
