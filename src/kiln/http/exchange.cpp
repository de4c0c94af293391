#include "kiln/http/exchange.h"

#include <filesystem>
#include <random>

#include "kiln/core/log.h"
#include "kiln/core/str.h"
#include "kiln/http/sse.h"

namespace kiln::http {

Exchange::Exchange(std::shared_ptr<ExchangeSink> sink, HttpRequest request)
    : sink_(std::move(sink)), request_(std::move(request)), start_(std::chrono::steady_clock::now()) {
  const std::string* id = request_.header("x-request-id");
  request_id_ = (id != nullptr && valid_request_id(*id)) ? *id : generate_request_id();
  record_.request_id = request_id_;
  record_.method = request_.method;
  record_.path = request_.path;
  record_.remote = request_.remote;
}

Exchange::~Exchange() {
  if (!request_.body_file.empty()) {
    std::error_code ec;
    std::filesystem::remove(request_.body_file, ec);
  }
  if (finished_) return;
  // Dropped without an answer (a handler bug, or its work was abandoned): answer on the strand.
  auto sink = sink_;
  bool streaming = streaming_;
  bool client_gone = client_gone_;
  std::string id = request_id_;
  Headers extra = extra_headers_;
  AccessRecord rec = record_;
  const ErrorFormat* format = error_format_;
  sink->post([sink, streaming, client_gone, id, extra, rec, format]() mutable {
    ApiError e = error_with_status(500, "The server dropped this request without an answer.");
    if (streaming) {
      sink->send_stream_bytes(format->stream_event(e));
      sink->send_stream_end();
    } else {
      sink->send_response(format->response(e), extra, id);
    }
    rec.status = client_gone ? kClientClosedStatus : 500;
    rec.error = client_gone ? kClientClosedMessage : e.message;
    sink->exchange_finished(rec);
  });
}

void Exchange::add_response_headers(const Headers& h) { extra_headers_.insert(extra_headers_.end(), h.begin(), h.end()); }

void Exchange::set_response_headers(const Headers& h) {
  for (const auto& [name, value] : h) {
    std::erase_if(extra_headers_, [&](const auto& e) { return ascii_lower(e.first) == ascii_lower(name); });
    extra_headers_.emplace_back(name, value);
  }
}

void Exchange::post(std::function<void()> fn) {
  sink_->post([self = shared_from_this(), fn = std::move(fn)] { fn(); });
}

void Exchange::post_after(std::chrono::milliseconds delay, std::function<void()> fn) {
  sink_->post_after(delay, [self = shared_from_this(), fn = std::move(fn)] { fn(); });
}

void Exchange::respond(HttpResponse response) {
  if (finished_) return;
  if (streaming_) {  // a handler error after the head went out: the stream carries it instead
    end_stream_with_error(error_with_status(response.status, "The response could not be completed."));
    return;
  }
  sink_->send_response(response, extra_headers_, request_id_);
  finish(response.status, record_.error);
}

void Exchange::respond_error(const ApiError& error) {
  if (finished_) return;
  if (streaming_) return end_stream_with_error(error);
  record_.error = error.message;
  respond(error_format_->response(error));
}

void Exchange::start_stream(std::string_view content_type) {
  if (finished_ || streaming_) return;
  streaming_ = true;
  record_.stream = true;
  sink_->send_stream_head(extra_headers_, request_id_, content_type);
}

void Exchange::send(std::string bytes) {
  if (finished_ || !streaming_) return;
  sink_->send_stream_bytes(std::move(bytes));
}

void Exchange::end_stream() {
  if (finished_ || !streaming_) return;
  sink_->send_stream_end();
  finish(200, record_.error);
}

void Exchange::end_stream_with_error(const ApiError& error) {
  end_stream_with_error(error, error_format_->stream_event(error));
}

void Exchange::end_stream_with_error(const ApiError& error, std::string event) {
  if (finished_) return;
  if (!streaming_) return respond_error(error);
  record_.error = error.message;
  sink_->send_stream_bytes(std::move(event));
  sink_->send_stream_end();
  // The HTTP status already went out as 200; the log keeps the error's own status.
  finish(error.status, error.message);
}

void Exchange::on_client_gone(std::function<void()> fn) {
  on_gone_ = std::move(fn);
  if (client_gone_ && !finished_ && on_gone_) run_on_gone();
}

void Exchange::run_on_gone() {
  // The callback stays stored until finish(): it may own the work that is to answer this
  // exchange (a generation session), which must outlive the cancel to log it as cancelled.
  auto f = on_gone_;
  f();
}

size_t Exchange::pending_write_bytes() const { return sink_->pending_bytes(); }

void Exchange::signal_client_gone() {
  if (client_gone_) return;
  client_gone_ = true;
  if (!finished_ && on_gone_) run_on_gone();
}

void Exchange::cut(const ApiError& error) {
  if (finished_) return;
  signal_client_gone();
  if (streaming_) end_stream_with_error(error);
  else respond_error(error);
}

void Exchange::finish(int status, const std::string& error) {
  finished_ = true;
  on_gone_ = nullptr;
  // Like nginx's 499: an answer the client left before it was complete is not a success, and
  // not a server error either; server errors keep their status.
  const bool cancelled = client_gone_ && (status < 300 || status == kClientClosedStatus);
  record_.status = cancelled ? kClientClosedStatus : status;
  record_.error = cancelled ? kClientClosedMessage : error;
  if (cancelled && !record_.finish_reason.empty()) record_.finish_reason = "cancelled";
  record_.duration_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  sink_->exchange_finished(record_);
}

bool valid_request_id(const std::string& id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id) {
    if (c <= 0x20 || c >= 0x7f) return false;
  }
  return true;
}

std::string generate_request_id() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  static const char* kHex = "0123456789abcdef";
  std::string id = "req_";
  for (int i = 0; i < 2; ++i) {
    uint64_t v = rng();
    for (int j = 0; j < 12; ++j) {
      id += kHex[v & 15];
      v >>= 4;
    }
  }
  return id;
}

}  // namespace kiln::http
