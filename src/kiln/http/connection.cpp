#include "kiln/http/connection.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <vector>

#include "kiln/http/asio.h"
#include "kiln/core/log.h"
#include "kiln/core/str.h"
#include "kiln/http/server.h"

namespace kiln::http {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;

namespace {
// Bytes the disconnect watch may buffer from a client that pipelines while a request runs.
constexpr size_t kMaxPipelinedBytes = 64 * 1024;

bool is_disconnect(const beast::error_code& ec) {
  return ec == bhttp::error::end_of_stream || ec == net::error::eof || ec == net::error::connection_reset ||
         ec == net::error::broken_pipe || ec == net::error::connection_aborted || ec == net::error::not_connected;
}
}  // namespace

Connection::Connection(Server& server, uint64_t id, net::ip::tcp::socket socket)
    : server_(server),
      id_(id),
      socket_(std::move(socket)),
      read_timer_(socket_.get_executor()),
      write_timer_(socket_.get_executor()) {
  beast::error_code ec;
  auto ep = socket_.remote_endpoint(ec);
  if (!ec) remote_ = ep.address().to_string() + ":" + std::to_string(ep.port());
  socket_.set_option(net::ip::tcp::no_delay(true), ec);
}

Connection::~Connection() {
  if (!closed_) server_.forget(id_);
}

void Connection::start() { wait_for_request(); }

bool Connection::keep_alive() const { return keep_alive_ && !draining_ && !server_.draining(); }

void Connection::wait_for_request() {
  if (closed_) return;
  if (draining_ || server_.draining()) {
    close();
    return;
  }
  if (buffer_.size() > 0) {  // a pipelined request is already here
    read_header();
    return;
  }
  read_timer_.expires_after(server_.options().idle_timeout);
  read_timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
    if (!ec) self->close();  // idle keep-alive connection: close quietly
  });
  socket_.async_wait(net::ip::tcp::socket::wait_read, [self = shared_from_this()](beast::error_code ec) {
    self->read_timer_.cancel();
    if (ec || self->closed_) {
      self->close();
      return;
    }
    self->read_header();
  });
}

void Connection::read_header() {
  parser_.emplace();
  parser_->header_limit(static_cast<std::uint32_t>(server_.options().max_header_bytes));
  // Beast checks a Content-Length against the limit while reading the headers: with upload
  // routes, the larger limit holds until on_header knows which kind of request this is.
  const auto& opts = server_.options();
  parser_->body_limit(opts.upload_route ? std::max(opts.max_body_bytes, opts.max_upload_bytes) : opts.max_body_bytes);
  read_timed_out_ = false;
  read_timer_.expires_after(server_.options().read_timeout);
  read_timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
    if (ec) return;
    self->read_timed_out_ = true;
    beast::error_code ignored;
    self->socket_.cancel(ignored);
  });
  bhttp::async_read_header(socket_, buffer_, *parser_,
                           [self = shared_from_this()](beast::error_code ec, size_t) { self->on_header(ec); });
}

void Connection::on_header(beast::error_code ec) {
  if (closed_) return;
  if (ec) {
    read_timer_.cancel();
    if (read_timed_out_) return fail_request(408, "The request was not received in time.");
    if (ec == bhttp::error::header_limit) {
      return fail_request(431, str_cat("The request's headers exceed the limit of ", server_.options().max_header_bytes,
                                       " bytes."));
    }
    if (ec == bhttp::error::body_limit) {
      const auto& opts = server_.options();
      const bool upload = opts.upload_route && opts.upload_route(request_head());
      return fail_request(413, str_cat("The request body exceeds the limit of ",
                                       upload ? opts.max_upload_bytes : opts.max_body_bytes, " bytes."));
    }
    if (is_disconnect(ec) || ec == net::error::operation_aborted) return close();
    return fail_request(400, str_cat("Malformed HTTP request: ", ec.message(), "."));
  }
  if (auto refused = refuse_transfer_encoding()) {
    read_timer_.cancel();
    return fail_request(refused->first, refused->second);
  }
  if (start_upload()) return;
  if (server_.options().upload_route) {
    const size_t limit = server_.options().max_body_bytes;
    parser_->body_limit(limit);
    if (auto length = parser_->content_length(); length && *length > limit) {
      read_timer_.cancel();
      return fail_request(413, str_cat("The request body exceeds the limit of ", limit, " bytes."));
    }
  }
  auto& req = parser_->get();
  auto expect = req[bhttp::field::expect];
  if (!expect.empty() && beast::iequals(expect, "100-continue") && !parser_->is_done()) {
    static const std::string kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
    net::async_write(socket_, net::buffer(kContinue), [self = shared_from_this()](beast::error_code wec, size_t) {
      if (wec) {
        self->read_timer_.cancel();
        return self->close();
      }
      bhttp::async_read(self->socket_, self->buffer_, *self->parser_,
                        [self](beast::error_code rec, size_t) { self->on_body(rec); });
    });
    return;
  }
  bhttp::async_read(socket_, buffer_, *parser_,
                    [self = shared_from_this()](beast::error_code rec, size_t) { self->on_body(rec); });
}

HttpRequest Connection::request_head() const {
  const auto& req = parser_->get();
  HttpRequest head;
  head.method = std::string(req.method_string());
  head.target = std::string(req.target());
  head.path = head.target.substr(0, head.target.find('?'));
  for (const auto& f : req) head.headers.emplace_back(ascii_lower(f.name_string()), std::string(f.value()));
  head.remote = remote_;
  return head;
}

bool Connection::start_upload() {
  const auto& opts = server_.options();
  if (!opts.upload_route || parser_->is_done()) return false;
  const auto& req = parser_->get();
  if (!opts.upload_route(request_head())) return false;
  std::error_code fec;
  std::filesystem::create_directories(opts.upload_dir, fec);
  upload_path_ = (opts.upload_dir / str_cat("upload-", id_, "-", generate_request_id(), ".part")).string();
  const bool expect_continue = beast::iequals(req[bhttp::field::expect], "100-continue");
  upload_parser_.emplace(std::move(*parser_));
  parser_.reset();
  upload_parser_->body_limit(opts.max_upload_bytes);
  beast::error_code ec;
  upload_parser_->get().body().open(upload_path_.c_str(), beast::file_mode::write, ec);
  if (ec) {
    log_error("cannot create the upload file ", upload_path_, ": ", ec.message());
    read_timer_.cancel();
    upload_path_.clear();
    fail_request(500, "The server cannot store uploads now.");
    return true;
  }
  // A large upload may take longer than an ordinary request.
  read_timer_.expires_after(opts.upload_timeout);
  read_timer_.async_wait([self = shared_from_this()](beast::error_code tec) {
    if (tec) return;
    self->read_timed_out_ = true;
    beast::error_code ignored;
    self->socket_.cancel(ignored);
  });
  auto read = [self = shared_from_this()] {
    bhttp::async_read(self->socket_, self->buffer_, *self->upload_parser_,
                      [self](beast::error_code rec, size_t) { self->on_upload(rec); });
  };
  if (!expect_continue) {
    read();
    return true;
  }
  static const std::string kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
  net::async_write(socket_, net::buffer(kContinue), [self = shared_from_this(), read](beast::error_code wec, size_t) {
    if (wec) {
      self->read_timer_.cancel();
      return self->close();
    }
    read();
  });
  return true;
}

void Connection::on_upload(beast::error_code ec) {
  if (closed_) return;
  read_timer_.cancel();
  if (ec) {
    const size_t limit = server_.options().max_upload_bytes;
    upload_parser_->get().body().close();
    std::error_code rec;
    std::filesystem::remove(upload_path_, rec);
    upload_path_.clear();
    if (read_timed_out_) return fail_request(408, "The upload was not received in time.");
    if (ec == bhttp::error::body_limit) {
      return fail_request(413, str_cat("The upload exceeds the limit of ", limit, " bytes."));
    }
    if (ec == net::error::operation_aborted) return close();
    return fail_request(400, "The upload was truncated or malformed: " + ec.message() + ".");
  }
  upload_parser_->get().body().close();
  dispatch();
}

std::optional<std::pair<int, std::string>> Connection::refuse_transfer_encoding() const {
  // Beast frames a body as chunked only when chunked is the last coding; with any other coding
  // it would take the body as empty and read what follows as the next request. RFC 9112 6.3: a
  // request whose last coding is not chunked has no knowable length (400, then close); 6.1: a
  // coding the server does not implement gets 501. kiln implements chunked alone.
  std::vector<std::string> codings;
  const auto& req = parser_->get();
  for (auto range = req.equal_range(bhttp::field::transfer_encoding); range.first != range.second; ++range.first) {
    for (const std::string& c : split(std::string(range.first->value()), ',')) {
      std::string t = ascii_lower(trim(c));
      if (!t.empty()) codings.push_back(std::move(t));
    }
  }
  if (codings.empty()) {
    if (req.count(bhttp::field::transfer_encoding) == 0) return std::nullopt;
    return std::make_pair(400, std::string("The request's Transfer-Encoding header is empty."));
  }
  const size_t chunked = static_cast<size_t>(std::count(codings.begin(), codings.end(), "chunked"));
  if (codings.back() != "chunked" || chunked > 1) {
    return std::make_pair(400, str_cat("The request's Transfer-Encoding '",
                                       echo_value(req[bhttp::field::transfer_encoding]),
                                       "' does not end in a single 'chunked', so its body's length is unknown; "
                                       "send the body with Content-Length or with 'Transfer-Encoding: chunked' alone."));
  }
  if (codings.size() > 1) {
    return std::make_pair(501, str_cat("kiln does not implement the transfer coding '", echo_value(codings.front()),
                                       "'; send the body with Content-Length or with "
                                       "'Transfer-Encoding: chunked' alone."));
  }
  return std::nullopt;
}

void Connection::on_body(beast::error_code ec) {
  if (closed_) return;
  read_timer_.cancel();
  if (ec) {
    if (read_timed_out_) return fail_request(408, "The request body was not received in time.");
    if (ec == bhttp::error::body_limit) {
      return fail_request(413, str_cat("The request body exceeds the limit of ", server_.options().max_body_bytes,
                                       " bytes."));
    }
    if (ec == bhttp::error::partial_message || is_disconnect(ec)) {
      // The client sent part of a request and closed: answer in case it only half-closed.
      return fail_request(400, "The request was truncated: the connection closed before its body was complete.");
    }
    if (ec == net::error::operation_aborted) return close();
    return fail_request(400, str_cat("Malformed HTTP request: ", ec.message(), "."));
  }
  dispatch();
}

void Connection::dispatch() {
  HttpRequest r;
  auto head = [&](const auto& req) {
    r.method = std::string(req.method_string());
    r.target = std::string(req.target());
    auto q = r.target.find('?');
    r.path = r.target.substr(0, q);
    for (const auto& f : req) r.headers.emplace_back(ascii_lower(f.name_string()), std::string(f.value()));
    r.http10 = req.version() == 10;
    keep_alive_ = req.keep_alive();
  };
  if (upload_parser_) {
    head(upload_parser_->get());
    r.body_file = std::move(upload_path_);
    upload_path_.clear();
    upload_parser_.reset();
  } else {
    head(parser_->get());
    r.body = std::move(parser_->get().body());
    parser_.reset();
  }
  r.remote = remote_;
  request_http10_ = r.http10;

  in_exchange_ = true;
  server_.exchanges_++;
  auto ex = std::make_shared<Exchange>(shared_from_this(), std::move(r));
  exchange_ = ex;
  start_watch();
  try {
    server_.on_request_(ex);
  } catch (const std::exception& e) {
    log_error("request ", ex->request_id(), " handler threw: ", e.what());
    if (!ex->finished()) {
      if (ex->streaming()) ex->end_stream_with_error(error_with_status(500, "Internal server error."));
      else ex->respond_error(error_with_status(500, "Internal server error."));
    }
  }
}

void Connection::fail_request(int status, const std::string& message) {
  HttpRequest r;
  auto head = [&](const auto& req) {
    r.method = std::string(req.method_string());
    r.target = std::string(req.target());
    r.path = r.target.substr(0, r.target.find('?'));
    auto id = req["x-request-id"];
    if (!id.empty()) r.headers.emplace_back("x-request-id", std::string(id));
  };
  if (parser_) head(parser_->get());
  else if (upload_parser_) head(upload_parser_->get());
  r.remote = remote_;
  parser_.reset();
  upload_parser_.reset();
  keep_alive_ = false;  // the byte stream cannot be trusted past a bad request
  in_exchange_ = true;
  server_.exchanges_++;
  auto ex = std::make_shared<Exchange>(shared_from_this(), std::move(r));
  exchange_ = ex;
  ApiError e = error_with_status(status, message);
  ex->respond_error(e);
}

void Connection::start_watch() {
  if (watching_ || closed_ || buffer_.size() >= kMaxPipelinedBytes) return;
  watching_ = true;
  socket_.async_read_some(buffer_.prepare(4096), [self = shared_from_this()](beast::error_code ec, size_t n) {
    self->on_watch(ec, n);
  });
}

void Connection::on_watch(beast::error_code ec, size_t n) {
  watching_ = false;
  if (closed_) return;
  if (!ec) {
    buffer_.commit(n);  // pipelined bytes: kept for the next request
    if (in_exchange_) {
      start_watch();
    } else if (resume_after_watch_) {
      resume_after_watch_ = false;
      wait_for_request();
    }
    return;
  }
  if (ec == net::error::operation_aborted) {
    if (resume_after_watch_) {
      resume_after_watch_ = false;
      wait_for_request();
    }
    return;
  }
  // EOF or reset while a request runs: the client is gone. (A client that only half-closes its
  // side is treated the same; HTTP clients do not do that.)
  peer_gone();
}

void Connection::send_response(const HttpResponse& response, const Headers& extra, const std::string& request_id) {
  std::string out;
  out.reserve(256 + response.body.size());
  out += str_cat("HTTP/1.1 ", response.status, " ", reason_phrase(response.status), "\r\n");
  if (!response.content_type.empty()) out += "Content-Type: " + response.content_type + "\r\n";
  // A 304 has no body, and its Content-Length would be that of the 200 it stands for.
  if (response.status != 304) out += str_cat("Content-Length: ", response.body.size(), "\r\n");
  out += "X-Request-ID: " + request_id + "\r\n";
  for (const auto& [k, v] : extra) out += k + ": " + v + "\r\n";
  for (const auto& [k, v] : response.headers) out += k + ": " + v + "\r\n";
  if (!keep_alive()) out += "Connection: close\r\n";
  else if (request_http10_) out += "Connection: keep-alive\r\n";
  out += "\r\n";
  out += response.body;
  queue_write(std::move(out));
}

void Connection::send_stream_head(const Headers& extra, const std::string& request_id, std::string_view content_type) {
  stream_chunked_ = !request_http10_;
  if (request_http10_) keep_alive_ = false;  // an HTTP/1.0 stream ends when the connection closes
  std::string out = "HTTP/1.1 200 OK\r\nContent-Type: " + std::string(content_type) +
                    "\r\nCache-Control: no-cache\r\nX-Accel-Buffering: no\r\n";
  out += "X-Request-ID: " + request_id + "\r\n";
  for (const auto& [k, v] : extra) out += k + ": " + v + "\r\n";
  if (stream_chunked_) out += "Transfer-Encoding: chunked\r\n";
  if (!keep_alive()) out += "Connection: close\r\n";
  out += "\r\n";
  queue_write(std::move(out));
}

void Connection::send_stream_bytes(std::string bytes) {
  if (bytes.empty()) return;
  if (!stream_chunked_) return queue_write(std::move(bytes));
  char head[24];
  std::snprintf(head, sizeof(head), "%zx\r\n", bytes.size());
  std::string out = head;
  out += bytes;
  out += "\r\n";
  queue_write(std::move(out));
}

void Connection::send_stream_end() {
  if (stream_chunked_) queue_write("0\r\n\r\n");
}

void Connection::post(std::function<void()> fn) { net::post(socket_.get_executor(), std::move(fn)); }

void Connection::post_after(std::chrono::milliseconds delay, std::function<void()> fn) {
  auto timer = std::make_shared<net::steady_timer>(socket_.get_executor(), delay);
  timer->async_wait([timer, fn = std::move(fn)](beast::error_code ec) {
    if (!ec) fn();
  });
}

void Connection::exchange_finished(const AccessRecord& record) {
  if (server_.on_done_) server_.on_done_(record);
  exchange_done();
}

void Connection::exchange_done() {
  if (!in_exchange_) return;
  in_exchange_ = false;
  server_.exchanges_--;
  if (closed_) return;
  if (!writing_ && out_.empty()) after_exchange();
}

void Connection::after_exchange() {
  if (closed_) return;
  if (gone_ || cut_) return close();
  if (!keep_alive()) return linger_close();
  if (watching_) {
    resume_after_watch_ = true;
    beast::error_code ignored;
    socket_.cancel(ignored);  // no write is pending: this only stops the watch read
    return;
  }
  wait_for_request();
}

void Connection::peer_gone() {
  if (gone_) return;
  gone_ = true;
  close();
}

void Connection::queue_write(std::string bytes) {
  if (closed_ || gone_ || bytes.empty()) return;
  pending_bytes_ += bytes.size();
  out_.push_back(std::move(bytes));
  if (!writing_) do_write();
}

void Connection::do_write() {
  writing_ = true;
  in_flight_ = out_.size();
  std::vector<net::const_buffer> bufs;
  bufs.reserve(in_flight_);
  for (const auto& s : out_) bufs.emplace_back(net::buffer(s));
  write_timer_.expires_after(server_.options().write_timeout);
  write_timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
    if (ec) return;
    log_warn("connection ", self->remote_, ": a write made no progress for ",
             self->server_.options().write_timeout.count(), " ms; closing it");
    self->peer_gone();
  });
  net::async_write(socket_, bufs, [self = shared_from_this()](beast::error_code ec, size_t) { self->on_write(ec); });
}

void Connection::on_write(beast::error_code ec) {
  writing_ = false;
  write_timer_.cancel();
  if (closed_) return;
  if (ec) return peer_gone();
  for (size_t i = 0; i < in_flight_ && !out_.empty(); ++i) {
    pending_bytes_ -= out_.front().size();
    out_.pop_front();
  }
  in_flight_ = 0;
  if (!out_.empty()) return do_write();
  if (!in_exchange_) after_exchange();
}

void Connection::linger_close() {
  // Half-close and read what the client still sends for a moment, so that a client still
  // uploading a rejected body gets our response rather than a reset.
  if (closing_ || closed_) return;
  closing_ = true;
  beast::error_code ignored;
  socket_.shutdown(net::ip::tcp::socket::shutdown_send, ignored);
  if (watching_) return close();  // a read is already pending; do not start a second
  read_timer_.expires_after(std::chrono::seconds(2));
  read_timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
    if (!ec) self->close();
  });
  linger_read(std::make_shared<std::array<char, 4096>>());
}

void Connection::linger_read(std::shared_ptr<std::array<char, 4096>> scratch) {
  auto buffer = net::buffer(*scratch);
  socket_.async_read_some(buffer, [self = shared_from_this(), scratch = std::move(scratch)](beast::error_code ec,
                                                                                          size_t) mutable {
    if (ec || self->closed_) return self->close();
    self->linger_read(std::move(scratch));
  });
}

void Connection::drain() {
  draining_ = true;
  if (!in_exchange_ && !writing_) close();
}

void Connection::force_close() {
  if (closed_) return;
  auto ex = in_exchange_ ? exchange_.lock() : nullptr;
  if (ex && !ex->finished() && !gone_) {
    cut_ = true;
    draining_ = true;
    ex->cut(error_with_status(503, "The server is shutting down: this request was cut when the drain time ran out.",
                              "server_shutting_down"));
    if (!closed_ && (writing_ || !out_.empty())) return;  // on_write() closes once the last bytes are out
  }
  gone_ = true;
  close();
}

void Connection::close() {
  if (closed_) return;
  closed_ = true;
  gone_ = true;
  read_timer_.cancel();
  write_timer_.cancel();
  beast::error_code ignored;
  socket_.shutdown(net::ip::tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
  server_.forget(id_);
  if (in_exchange_) {
    if (auto ex = exchange_.lock()) ex->signal_client_gone();
  }
}

}  // namespace kiln::http
