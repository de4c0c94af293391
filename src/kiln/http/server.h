// The HTTP/1.1 server core on Boost.Beast/Asio: one io_context run by a few threads, one strand
// per connection, so thousands of open streams need no thread each.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "kiln/http/asio.h"
#include "kiln/core/status.h"
#include "kiln/http/access_log.h"
#include "kiln/http/exchange.h"

namespace kiln::http {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8000;  // 0: any free port (see Server::port())
  int threads = 4;
  size_t max_body_bytes = 32u << 20;
  size_t max_header_bytes = 32u << 10;
  std::chrono::milliseconds read_timeout{30000};   // a whole request, from its first byte
  std::chrono::milliseconds idle_timeout{75000};   // a kept-alive connection waiting for a request
  std::chrono::milliseconds write_timeout{60000};  // one write to a client that does not read
  int max_connections = 8192;
  // Requests for which this says true, seeing their head (no body yet), have their body streamed
  // into a file in upload_dir (HttpRequest::body_file), up to max_upload_bytes, within
  // upload_timeout. Others are read into memory under max_body_bytes.
  std::function<bool(const HttpRequest&)> upload_route;
  std::filesystem::path upload_dir;
  size_t max_upload_bytes = 200u << 20;
  std::chrono::milliseconds upload_timeout{600000};
  // Once the drain time is over, what is still open is cut (a stream gets an error event and its
  // end) and gets this long to close; past it run() returns even if an I/O thread is still busy.
  std::chrono::milliseconds drain_grace{2000};
};

class Server {
 public:
  using RequestHandler = std::function<void(const ExchangePtr&)>;
  using DoneHandler = std::function<void(const AccessRecord&)>;

  Server(ServerOptions options, RequestHandler on_request, DoneHandler on_done);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds and listens; port() is then the bound port.
  Status listen();
  int port() const { return bound_port_; }
  // Runs the I/O threads until the server has shut down. With `handle_signals`, SIGINT/SIGTERM
  // start a graceful shutdown with `drain` (a second signal closes everything at once). The
  // calling thread only keeps the time, so the drain deadline holds even while every I/O thread
  // is busy. Returns true when every I/O thread stopped; false when one was still busy
  // drain_grace (and a little more) after the drain deadline: the caller should then end the
  // process rather than wait for it (the destructor would wait).
  bool run(bool handle_signals, std::chrono::milliseconds drain);
  // Thread-safe: stops accepting, lets in-flight requests finish within `drain`, then cuts the
  // rest (their work is cancelled as if their clients had left; a stream ends with an error
  // event, a request still waiting gets a 503) and stops run(). A later call may only shorten
  // the drain.
  void shutdown(std::chrono::milliseconds drain);

  int open_connections() const { return connections_.load(); }
  int active_exchanges() const { return exchanges_.load(); }
  bool draining() const { return draining_.load(); }
  const ServerOptions& options() const { return options_; }

 private:
  friend class Connection;
  friend class Exchange;
  void do_accept();
  void reject_over_limit(boost::asio::ip::tcp::socket socket);
  void forget(uint64_t id);
  std::vector<std::shared_ptr<Connection>> live_connections();
  // run()'s part once a shutdown was asked for; returns whether the I/O threads all stopped.
  bool drain_and_stop(std::unique_lock<std::mutex>& lock);

  ServerOptions options_;
  RequestHandler on_request_;
  DoneHandler on_done_;
  // Declared before ioc_: handlers the io_context destroys at the end (a connection among them)
  // still report to these.
  std::atomic<int> connections_{0};
  std::atomic<int> exchanges_{0};
  std::atomic<bool> draining_{false};
  std::mutex conns_mu_;
  uint64_t next_id_ = 0;
  std::unordered_map<uint64_t, std::weak_ptr<Connection>> conns_;
  // What run() waits on: a shutdown asked for, connections closing, I/O threads ending.
  std::mutex state_mu_;
  std::condition_variable state_cv_;
  bool shutdown_asked_ = false;                           // guarded by state_mu_
  std::chrono::steady_clock::time_point drain_deadline_;  // guarded by state_mu_
  int threads_running_ = 0;                               // guarded by state_mu_
  boost::asio::io_context ioc_;
  boost::asio::ip::tcp::acceptor acceptor_;
  int bound_port_ = 0;
  std::vector<std::thread> threads_;
};

}  // namespace kiln::http
