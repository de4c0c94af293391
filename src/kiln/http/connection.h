// One client connection (internal to the server core): reads requests with Beast's parser under
// size limits and timeouts, hands each to the request handler as an Exchange, writes responses
// and event streams, and notices a client that goes away while its request is running.
#pragma once

#include <cstdint>
#include <deque>
#include <array>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "kiln/http/asio.h"
#include "kiln/http/exchange.h"

namespace kiln::http {

class Server;

class Connection : public ExchangeSink, public std::enable_shared_from_this<Connection> {
 public:
  Connection(Server& server, uint64_t id, boost::asio::ip::tcp::socket socket);
  ~Connection() override;

  void start();
  // Called on the strand when the server drains: idle connections close now, busy ones after
  // their response.
  void drain();
  // Called on the strand when the drain time is over: a request still running is cut (its work
  // cancelled; a stream ends with an error event and its terminator, a request not yet answered
  // gets a 503), and the connection closes once that is written.
  void force_close();

  boost::asio::any_io_executor executor() { return socket_.get_executor(); }

 private:
  friend class Exchange;

  void wait_for_request();
  void read_header();
  void on_header(boost::beast::error_code ec);
  void on_body(boost::beast::error_code ec);
  void dispatch();
  // Answers a request that could not be read (400, 408, 413, 431, 501) and closes.
  void fail_request(int status, const std::string& message);
  // The request's Transfer-Encoding, if it has one kiln cannot read: the status and message.
  std::optional<std::pair<int, std::string>> refuse_transfer_encoding() const;

  void start_watch();
  void on_watch(boost::beast::error_code ec, size_t n);

  // ExchangeSink: called by Exchange.
  void post(std::function<void()> fn) override;
  void post_after(std::chrono::milliseconds delay, std::function<void()> fn) override;
  void send_response(const HttpResponse& response, const Headers& extra, const std::string& request_id) override;
  void send_stream_head(const Headers& extra, const std::string& request_id, std::string_view content_type) override;
  void send_stream_bytes(std::string bytes) override;
  void send_stream_end() override;
  void exchange_finished(const AccessRecord& record) override;
  size_t pending_bytes() const override { return pending_bytes_; }
  void exchange_done();
  // A request whose route takes its body as a file (ServerOptions::upload_route): the rest of
  // the body is streamed into a temporary file instead of memory.
  bool start_upload();
  // The request being read, without its body (its headers are complete).
  HttpRequest request_head() const;
  void on_upload(boost::beast::error_code ec);
  void peer_gone();

  void queue_write(std::string bytes);
  void do_write();
  void on_write(boost::beast::error_code ec);
  void after_exchange();
  void linger_close();
  // One read of linger_close's discard loop; each read's handler owns the next (no cycle, so a
  // read still pending when the server stops frees everything it holds).
  void linger_read(std::shared_ptr<std::array<char, 4096>> scratch);
  void close();
  bool keep_alive() const;

  Server& server_;
  uint64_t id_;
  boost::asio::ip::tcp::socket socket_;
  std::string remote_;
  boost::beast::flat_buffer buffer_;
  std::optional<boost::beast::http::request_parser<boost::beast::http::string_body>> parser_;
  std::optional<boost::beast::http::request_parser<boost::beast::http::file_body>> upload_parser_;
  std::string upload_path_;
  boost::asio::steady_timer read_timer_;
  boost::asio::steady_timer write_timer_;
  std::deque<std::string> out_;
  size_t in_flight_ = 0;  // items of out_ being written
  size_t pending_bytes_ = 0;
  bool writing_ = false;
  std::weak_ptr<Exchange> exchange_;
  bool in_exchange_ = false;
  bool stream_chunked_ = false;
  bool request_http10_ = false;
  bool watching_ = false;
  bool resume_after_watch_ = false;
  bool keep_alive_ = true;
  bool read_timed_out_ = false;
  bool gone_ = false;
  bool closing_ = false;
  bool closed_ = false;
  bool draining_ = false;
  bool cut_ = false;  // force_close() cut the exchange: close once its last bytes are written
};

}  // namespace kiln::http
