// One request and its response on a connection: what a handler sees.
//
// Threading: a connection runs on its own Asio strand; the handler is called on it, and every
// method below except post() must be called on it. Work from other threads (the engine worker's
// token notifications) comes back through post(). A handler keeps the exchange alive (shared_ptr)
// until it has answered; an exchange dropped without an answer answers 500 by itself (and is
// logged 499 when its client had left).
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "kiln/http/access_log.h"
#include "kiln/http/errors.h"
#include "kiln/http/http_types.h"

namespace kiln::http {

class Connection;

// Where an exchange's answer goes: a client connection (Connection), or an in-process caller
// that collects the answer (a batch line, batch_runner.h). Every call but post*() comes on the
// exchange's strand.
class ExchangeSink {
 public:
  virtual ~ExchangeSink() = default;
  // Runs `fn` on the exchange's strand (now, or after `delay`). Thread-safe.
  virtual void post(std::function<void()> fn) = 0;
  virtual void post_after(std::chrono::milliseconds delay, std::function<void()> fn) = 0;
  virtual void send_response(const HttpResponse& response, const Headers& extra, const std::string& request_id) = 0;
  virtual void send_stream_head(const Headers& extra, const std::string& request_id, std::string_view content_type) = 0;
  virtual void send_stream_bytes(std::string bytes) = 0;
  virtual void send_stream_end() = 0;
  // The exchange is answered: `record` goes to the access log, metrics and job store.
  virtual void exchange_finished(const AccessRecord& record) = 0;
  virtual size_t pending_bytes() const = 0;
};

// How the access log and metrics record a request whose client left before its answer was
// complete (nginx's "Client Closed Request").
inline constexpr int kClientClosedStatus = 499;
inline constexpr const char* kClientClosedMessage = "The client closed the connection before the answer was complete.";

class Exchange : public std::enable_shared_from_this<Exchange> {
 public:
  Exchange(std::shared_ptr<ExchangeSink> sink, HttpRequest request);
  ~Exchange();
  Exchange(const Exchange&) = delete;
  Exchange& operator=(const Exchange&) = delete;

  const HttpRequest& request() const { return request_; }
  // The client's X-Request-ID when it sent a usable one, else a generated one.
  const std::string& request_id() const { return request_id_; }
  std::map<std::string, std::string>& params() { return params_; }
  AccessRecord& record() { return record_; }
  std::chrono::steady_clock::time_point start_time() const { return start_; }
  // Headers added to whatever response this exchange sends (CORS).
  void add_response_headers(const Headers& h);
  // How this exchange's errors look (OpenAI's unless an API route says otherwise).
  void set_error_format(const ErrorFormat& format) { error_format_ = &format; }
  // Like add_response_headers, replacing any header already added under the same name.
  void set_response_headers(const Headers& h);

  // Runs `fn` on this exchange's strand. Thread-safe.
  void post(std::function<void()> fn);
  // Runs `fn` on the strand after `delay` (SSE keep-alive comments).
  void post_after(std::chrono::milliseconds delay, std::function<void()> fn);

  void respond(HttpResponse response);
  void respond_error(const ApiError& error);

  // Server-sent events: a 200 with text/event-stream, then raw event bytes, then the end.
  void start_stream(std::string_view content_type = "text/event-stream; charset=utf-8");
  void send(std::string bytes);
  void end_stream();
  // Sends the envelope as the stream's last event and ends it (an error after the stream began).
  void end_stream_with_error(const ApiError& error);
  // The same with the API's own last event (one that continues a numbered event sequence).
  void end_stream_with_error(const ApiError& error, std::string event);

  bool streaming() const { return streaming_; }
  bool finished() const { return finished_; }
  // True once the peer has gone (closed, reset, too slow to read, or the server is closing it).
  bool client_gone() const { return client_gone_; }
  // `fn` runs once, on the strand, when the client goes while the exchange is not finished; the
  // exchange keeps it (and what it holds) until it is finished.
  void on_client_gone(std::function<void()> fn);
  // Bytes queued on the socket and not yet written (a slow reader's backlog).
  size_t pending_write_bytes() const;

 private:
  friend class Connection;
  void signal_client_gone();
  // The server cuts this exchange (its drain time is over): the work behind it is cancelled as if
  // the client had left, and the client gets `error` (as the stream's last event when streaming).
  void cut(const ApiError& error);
  void run_on_gone();
  void finish(int status, const std::string& error);

  std::shared_ptr<ExchangeSink> sink_;
  HttpRequest request_;
  std::string request_id_;
  std::map<std::string, std::string> params_;
  Headers extra_headers_;
  const ErrorFormat* error_format_ = &openai_error_format();
  AccessRecord record_;
  std::chrono::steady_clock::time_point start_;
  std::function<void()> on_gone_;
  bool streaming_ = false;
  bool finished_ = false;
  bool client_gone_ = false;
};

using ExchangePtr = std::shared_ptr<Exchange>;

// A usable client request id: 1..128 visible ASCII characters.
bool valid_request_id(const std::string& id);
// A fresh random id ("req_" + 24 hex digits).
std::string generate_request_id();

}  // namespace kiln::http
