#include "kiln/http/server.h"

#include <csignal>
#include <thread>
#include <vector>

#include "kiln/http/asio.h"
#include "kiln/core/log.h"
#include "kiln/http/connection.h"

namespace kiln::http {

namespace net = boost::asio;
using tcp = net::ip::tcp;

Server::Server(ServerOptions options, RequestHandler on_request, DoneHandler on_done)
    : options_(std::move(options)),
      on_request_(std::move(on_request)),
      on_done_(std::move(on_done)),
      acceptor_(ioc_) {}

Server::~Server() {
  // After run() gave up on a busy I/O thread the process normally ends; if it does not, the
  // thread still uses this object, so wait for it.
  ioc_.stop();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
}

Status Server::listen() {
  boost::system::error_code ec;
  auto addr = net::ip::make_address(options_.host, ec);
  if (ec) return invalid_argument(str_cat("--host: '", options_.host, "' is not an IP address"));
  if (options_.port < 0 || options_.port > 65535) return invalid_argument(str_cat("--port: ", options_.port, " is out of range"));
  tcp::endpoint ep(addr, static_cast<unsigned short>(options_.port));
  acceptor_.open(ep.protocol(), ec);
  if (!ec) acceptor_.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(ep, ec);
  if (!ec) acceptor_.listen(net::socket_base::max_listen_connections, ec);
  if (ec) return unavailable(str_cat("cannot listen on ", options_.host, ":", options_.port, ": ", ec.message()));
  bound_port_ = acceptor_.local_endpoint().port();
  do_accept();
  return Status::ok();
}

void Server::do_accept() {
  acceptor_.async_accept(net::make_strand(ioc_), [this](boost::system::error_code ec, tcp::socket socket) {
    if (ec == net::error::operation_aborted || !acceptor_.is_open()) return;
    if (ec) {
      // Out of file descriptors and the like: back off a little rather than spin.
      log_warn("accept failed: ", ec.message());
      auto t = std::make_shared<net::steady_timer>(ioc_, std::chrono::milliseconds(50));
      t->async_wait([this, t](boost::system::error_code) { do_accept(); });
      return;
    }
    if (draining_) {
      boost::system::error_code ignored;
      socket.close(ignored);
    } else if (connections_.load() >= options_.max_connections) {
      reject_over_limit(std::move(socket));
    } else {
      std::shared_ptr<Connection> conn;
      {
        std::lock_guard<std::mutex> lock(conns_mu_);
        uint64_t id = next_id_++;
        conn = std::make_shared<Connection>(*this, id, std::move(socket));
        conns_[id] = conn;
      }
      connections_++;
      net::post(conn->executor(), [conn] { conn->start(); });
    }
    do_accept();
  });
}

void Server::reject_over_limit(tcp::socket socket) {
  // A fresh socket's send buffer is empty, so this small write never blocks an I/O thread.
  static const std::string kBody =
      R"({"error":{"message":"The server has too many open connections; retry shortly.","type":"server_error","param":null,"code":"overloaded"}})";
  static const std::string kResponse = str_cat(
      "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\nConnection: close\r\n"
      "Content-Length: ", kBody.size(), "\r\n\r\n", kBody);
  boost::system::error_code ec;
  socket.non_blocking(true, ec);
  socket.write_some(net::buffer(kResponse), ec);
  socket.shutdown(tcp::socket::shutdown_both, ec);
  socket.close(ec);
}

void Server::forget(uint64_t id) {
  {
    std::lock_guard<std::mutex> lock(conns_mu_);
    conns_.erase(id);
  }
  connections_--;
  if (draining_) {
    // run() waits for the last connection; taking the lock orders this with its check.
    { std::lock_guard<std::mutex> lock(state_mu_); }
    state_cv_.notify_all();
  }
}

std::vector<std::shared_ptr<Connection>> Server::live_connections() {
  std::vector<std::shared_ptr<Connection>> conns;
  std::lock_guard<std::mutex> lock(conns_mu_);
  for (auto& [id, w] : conns_) {
    if (auto c = w.lock()) conns.push_back(c);
  }
  return conns;
}

bool Server::run(bool handle_signals, std::chrono::milliseconds drain) {
  // Signals are caught on a thread of their own: with every I/O thread busy (a long request),
  // SIGTERM must still start the drain and its deadline.
  net::io_context signal_ioc;
  net::signal_set signals(signal_ioc);
  std::function<void(boost::system::error_code, int)> on_signal;
  int signal_count = 0;
  std::thread signal_thread;
  if (handle_signals) {
    signals.add(SIGINT);
    signals.add(SIGTERM);
    on_signal = [&](boost::system::error_code ec, int sig) {
      if (ec) return;
      if (++signal_count == 1) {
        log_info("received signal ", sig, ": draining (up to ", drain.count(), " ms for ", exchanges_.load(),
                 " requests in flight)");
        shutdown(drain);
      } else {
        log_warn("received signal ", sig, " again: closing every connection now");
        shutdown(std::chrono::milliseconds(0));
      }
      signals.async_wait(on_signal);
    };
    signals.async_wait(on_signal);
    signal_thread = std::thread([&signal_ioc] { signal_ioc.run(); });
  }
  const int n = std::max(1, options_.threads);
  {
    std::lock_guard<std::mutex> lock(state_mu_);
    threads_running_ = n;
  }
  for (int i = 0; i < n; ++i) {
    threads_.emplace_back([this] {
      ioc_.run();
      {
        std::lock_guard<std::mutex> lock(state_mu_);
        threads_running_--;
      }
      state_cv_.notify_all();
    });
  }
  bool stopped = true;
  {
    std::unique_lock<std::mutex> lock(state_mu_);
    state_cv_.wait(lock, [this] { return shutdown_asked_ || threads_running_ == 0; });
    if (shutdown_asked_) stopped = drain_and_stop(lock);
  }
  if (signal_thread.joinable()) {
    signal_ioc.stop();
    signal_thread.join();
  }
  if (!stopped) return false;
  for (auto& t : threads_) t.join();
  threads_.clear();
  return true;
}

bool Server::drain_and_stop(std::unique_lock<std::mutex>& lock) {
  using Clock = std::chrono::steady_clock;
  auto no_connections = [this] { return connections_.load() <= 0; };
  // A second shutdown() may bring the deadline forward: wait on whatever it is now.
  while (!no_connections() && Clock::now() < drain_deadline_) state_cv_.wait_until(lock, drain_deadline_);
  const Clock::time_point cut_deadline = Clock::now() + options_.drain_grace;
  if (!no_connections()) {
    lock.unlock();
    auto conns = live_connections();
    log_warn("drain time is over: cutting ", conns.size(), " connections with ", exchanges_.load(),
             " requests in flight");
    for (auto& c : conns) net::post(c->executor(), [c] { c->force_close(); });
    lock.lock();
    state_cv_.wait_until(lock, cut_deadline, no_connections);
  }
  ioc_.stop();
  // A thread inside a handler that does not return (nothing should take this long) is left
  // behind rather than allowed to hold the process past its deadline.
  const auto threads_deadline = std::max(cut_deadline, Clock::now()) + std::chrono::milliseconds(500);
  if (state_cv_.wait_until(lock, threads_deadline, [this] { return threads_running_ == 0; })) return true;
  log_error("shutdown: ", threads_running_, " HTTP threads are still busy past the drain time and its ",
            options_.drain_grace.count(), " ms grace; giving up on them");
  return false;
}

void Server::shutdown(std::chrono::milliseconds drain) {
  bool first = false;
  {
    std::lock_guard<std::mutex> lock(state_mu_);
    const auto deadline = std::chrono::steady_clock::now() + drain;
    if (shutdown_asked_ && deadline >= drain_deadline_) return;
    drain_deadline_ = deadline;
    first = !shutdown_asked_;
    shutdown_asked_ = true;
    draining_ = true;  // new connections are refused from now on, /health says so
  }
  state_cv_.notify_all();
  if (!first) return;
  net::post(ioc_, [this] {
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    for (auto& c : live_connections()) net::post(c->executor(), [c] { c->drain(); });
  });
}

}  // namespace kiln::http
