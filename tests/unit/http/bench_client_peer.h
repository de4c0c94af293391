// A real HTTP/1.1 peer for the load generator's tests: it accepts on 127.0.0.1, reads each request
// with Beast and answers as a script says, writing the body in pieces with chosen delays, so the
// timings the client measures can be checked against the pacing the server used.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

namespace kiln::bench_serve::testing {

struct PeerRequest {
  std::string target;
  std::string authorization;
  nlohmann::json body;
};

struct PeerPiece {
  std::chrono::milliseconds delay{0};  // wait this long, then write `bytes`
  std::string bytes;
};

struct PeerReply {
  int status = 200;
  std::string content_type = "text/event-stream";
  std::vector<PeerPiece> pieces;
  bool chunked = true;          // else the body ends when the connection closes
  bool end_body = true;         // false: stop after the pieces without ending the body (cut stream)
  bool close_after = false;     // close the connection after this reply
  bool never_answer = false;    // read the request and then say nothing
};

// An OpenAI chat stream: a role-only chunk at once, then one content chunk per token (the first
// after `first_delay`, then every `gap`), a usage chunk (when usage >= 0) and [DONE].
inline std::vector<PeerPiece> chat_stream(int tokens, std::chrono::milliseconds first_delay,
                                          std::chrono::milliseconds gap, int usage_completion_tokens,
                                          int usage_prompt_tokens = 7) {
  using nlohmann::json;
  auto event = [](const json& j) { return "data: " + j.dump() + "\n\n"; };
  std::vector<PeerPiece> out;
  out.push_back({std::chrono::milliseconds(0),
                 event(json{{"object", "chat.completion.chunk"},
                            {"choices", json::array({json{{"index", 0}, {"delta", json{{"role", "assistant"}}}}})}})});
  for (int i = 0; i < tokens; ++i) {
    json delta = {{"content", " tok" + std::to_string(i)}};
    json choice = {{"index", 0}, {"delta", delta}, {"finish_reason", i + 1 == tokens ? json("length") : json()}};
    out.push_back({i == 0 ? first_delay : gap,
                   event(json{{"object", "chat.completion.chunk"}, {"choices", json::array({choice})}})});
  }
  std::string tail;
  if (usage_completion_tokens >= 0) {
    tail += event(json{{"object", "chat.completion.chunk"},
                       {"choices", json::array()},
                       {"usage", json{{"prompt_tokens", usage_prompt_tokens},
                                      {"completion_tokens", usage_completion_tokens},
                                      {"total_tokens", usage_prompt_tokens + usage_completion_tokens}}}});
  }
  tail += "data: [DONE]\n\n";
  out.push_back({std::chrono::milliseconds(0), tail});
  return out;
}

class Peer {
 public:
  using Handler = std::function<PeerReply(const PeerRequest&)>;

  explicit Peer(Handler handler) : handler_(std::move(handler)), acceptor_(ioc_) {
    namespace ip = boost::asio::ip;
    ip::tcp::endpoint ep(ip::make_address("127.0.0.1"), 0);
    acceptor_.open(ep.protocol());
    acceptor_.set_option(boost::asio::socket_base::reuse_address(true));
    acceptor_.bind(ep);
    acceptor_.listen();
    port_ = acceptor_.local_endpoint().port();
    boost::asio::co_spawn(ioc_, accept_loop(), boost::asio::detached);
    thread_ = std::thread([this] { ioc_.run(); });
  }

  ~Peer() {
    boost::asio::post(ioc_, [this] {
      boost::system::error_code ignored;
      acceptor_.close(ignored);
      for (auto* s : sockets_) s->close(ignored);
    });
    ioc_.stop();
    thread_.join();
  }

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  int connections() const { return connections_.load(); }
  int max_in_flight() const { return max_in_flight_.load(); }
  std::vector<PeerRequest> requests() const {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_;
  }

 private:
  using tcp = boost::asio::ip::tcp;

  boost::asio::awaitable<void> accept_loop() {
    for (;;) {
      auto [ec, socket] = co_await acceptor_.async_accept(boost::asio::as_tuple(boost::asio::use_awaitable));
      if (ec) co_return;
      ++connections_;
      boost::asio::co_spawn(ioc_, serve(std::move(socket)), boost::asio::detached);
    }
  }

  boost::asio::awaitable<void> serve(tcp::socket socket) {
    namespace http = boost::beast::http;
    constexpr auto tuple = boost::asio::as_tuple(boost::asio::use_awaitable);
    sockets_.push_back(&socket);
    boost::beast::flat_buffer buffer;
    for (;;) {
      http::request<http::string_body> req;
      auto [ec, n] = co_await http::async_read(socket, buffer, req, tuple);
      if (ec) break;
      PeerRequest pr;
      pr.target = std::string(req.target());
      pr.authorization = std::string(req[http::field::authorization]);
      pr.body = nlohmann::json::parse(req.body(), nullptr, false);
      {
        std::lock_guard<std::mutex> lock(mu_);
        requests_.push_back(pr);
      }
      PeerReply reply = handler_(pr);
      int now = ++in_flight_;
      int seen = max_in_flight_.load();
      while (now > seen && !max_in_flight_.compare_exchange_weak(seen, now)) {}
      bool keep = co_await answer(socket, reply);
      --in_flight_;
      if (!keep) break;
    }
    std::erase(sockets_, &socket);
    boost::system::error_code ignored;
    socket.shutdown(tcp::socket::shutdown_both, ignored);
    socket.close(ignored);
  }

  // Writes one reply; false when the connection must close afterwards.
  boost::asio::awaitable<bool> answer(tcp::socket& socket, const PeerReply& reply) {
    constexpr auto tuple = boost::asio::as_tuple(boost::asio::use_awaitable);
    if (reply.never_answer) {
      boost::asio::steady_timer t(ioc_, std::chrono::hours(1));
      co_await t.async_wait(tuple);
      co_return false;
    }
    std::string head = "HTTP/1.1 " + std::to_string(reply.status) + " X\r\nContent-Type: " + reply.content_type + "\r\n";
    head += reply.chunked ? "Transfer-Encoding: chunked\r\n" : "Connection: close\r\n";
    head += "\r\n";
    auto [ec, n] = co_await boost::asio::async_write(socket, boost::asio::buffer(head), tuple);
    if (ec) co_return false;
    for (const PeerPiece& p : reply.pieces) {
      if (p.delay.count() > 0) {
        boost::asio::steady_timer t(ioc_, p.delay);
        co_await t.async_wait(tuple);
      }
      std::string bytes = p.bytes;
      if (reply.chunked) {
        char size[32];
        std::snprintf(size, sizeof size, "%zx\r\n", bytes.size());
        bytes = size + bytes + "\r\n";
      }
      auto [wec, wn] = co_await boost::asio::async_write(socket, boost::asio::buffer(bytes), tuple);
      if (wec) co_return false;
    }
    if (!reply.end_body || !reply.chunked) co_return false;
    auto [tec, tn] = co_await boost::asio::async_write(socket, boost::asio::buffer(std::string("0\r\n\r\n")), tuple);
    co_return !tec && !reply.close_after;
  }

  Handler handler_;
  boost::asio::io_context ioc_;
  tcp::acceptor acceptor_;
  unsigned short port_ = 0;
  std::thread thread_;
  std::vector<tcp::socket*> sockets_;  // the I/O thread's open connections
  mutable std::mutex mu_;
  std::vector<PeerRequest> requests_;
  std::atomic<int> connections_{0};
  std::atomic<int> in_flight_{0};
  std::atomic<int> max_in_flight_{0};
};

}  // namespace kiln::bench_serve::testing
