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
      acceptor_(ioc_),
      drain_timer_(ioc_) {}

Server::~Server() = default;

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
}

void Server::run(bool handle_signals, std::chrono::milliseconds drain) {
  std::unique_ptr<net::signal_set> signals;
  int signal_count = 0;
  if (handle_signals) {
    signals = std::make_unique<net::signal_set>(ioc_, SIGINT, SIGTERM);
    std::function<void(boost::system::error_code, int)> on_signal;
    on_signal = [&, drain](boost::system::error_code ec, int sig) {
      if (ec) return;
      ++signal_count;
      if (signal_count == 1) {
        log_info("received signal ", sig, ": draining (up to ", drain.count(), " ms for ", exchanges_.load(),
                 " requests in flight)");
        shutdown(drain);
      } else {
        log_warn("received signal ", sig, " again: closing every connection now");
        shutdown(std::chrono::milliseconds(0));
      }
      signals->async_wait(on_signal);
    };
    signals->async_wait(on_signal);
  }
  int n = std::max(1, options_.threads);
  std::vector<std::thread> threads;
  for (int i = 1; i < n; ++i) threads.emplace_back([this] { ioc_.run(); });
  ioc_.run();
  for (auto& t : threads) t.join();
  signals.reset();
}

void Server::shutdown(std::chrono::milliseconds drain) {
  net::post(ioc_, [this, drain] {
    auto deadline = std::chrono::steady_clock::now() + drain;
    if (draining_ && deadline >= drain_deadline_) return;
    drain_deadline_ = deadline;
    if (!draining_) {
      draining_ = true;
      boost::system::error_code ignored;
      acceptor_.close(ignored);
      std::vector<std::shared_ptr<Connection>> conns;
      {
        std::lock_guard<std::mutex> lock(conns_mu_);
        for (auto& [id, w] : conns_) {
          if (auto c = w.lock()) conns.push_back(c);
        }
      }
      for (auto& c : conns) net::post(c->executor(), [c] { c->drain(); });
    }
    check_drained();
  });
}

void Server::check_drained() {
  if (stopped_) return;
  bool past = std::chrono::steady_clock::now() >= drain_deadline_;
  bool hopeless = std::chrono::steady_clock::now() >= drain_deadline_ + std::chrono::seconds(2);
  if (connections_.load() <= 0 || hopeless) {
    stopped_ = true;
    ioc_.stop();
    return;
  }
  if (past) {
    std::vector<std::shared_ptr<Connection>> conns;
    {
      std::lock_guard<std::mutex> lock(conns_mu_);
      for (auto& [id, w] : conns_) {
        if (auto c = w.lock()) conns.push_back(c);
      }
    }
    if (!conns.empty()) {
      log_warn("drain time is over: closing ", conns.size(), " connections with ", exchanges_.load(),
               " requests in flight");
    }
    for (auto& c : conns) net::post(c->executor(), [c] { c->force_close(); });
  }
  drain_timer_.expires_after(std::chrono::milliseconds(20));
  drain_timer_.async_wait([this](boost::system::error_code ec) {
    if (!ec) check_drained();
  });
}

}  // namespace kiln::http
