// The server core over real loopback sockets: keep-alive, pipelining, limits, timeouts,
// disconnect detection, connection cap and graceful drain.
#include "kiln/http/server.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "kiln/http/sse.h"
#include "unit/http/raw_client.h"

namespace kiln::http {
namespace {

using kiln::testing::http_request;
using kiln::testing::RawClient;

class ServerTest : public ::testing::Test {
 protected:
  void start(ServerOptions opts = {}) {
    opts.host = "127.0.0.1";
    opts.port = 0;
    opts.threads = 2;
    server_ = std::make_unique<Server>(
        opts, [this](const ExchangePtr& ex) { handle(ex); },
        [this](const AccessRecord& r) {
          std::lock_guard<std::mutex> lock(mu_);
          records_.push_back(r);
        });
    ASSERT_TRUE(server_->listen().is_ok());
    thread_ = std::thread([this] { run_result_ = server_->run(false, std::chrono::milliseconds(0)); });
  }
  void TearDown() override {
    if (server_) server_->shutdown(std::chrono::milliseconds(200));
    if (thread_.joinable()) thread_.join();
    stopping_ = true;
    release_ = true;
    for (auto& t : workers_) t.join();
    held_.clear();
    server_.reset();
  }

  void handle(const ExchangePtr& ex) {
    const auto& path = ex->request().path;
    if (path == "/hello") {
      ex->respond({200, "text/plain", {}, "hello"});
    } else if (path == "/echo") {
      ex->respond({200, "text/plain", {}, ex->request().body});
    } else if (path == "/drop") {
      // no answer: the exchange answers 500 when dropped
    } else if (path == "/wait") {
      // no answer until the server cuts it
      ex->on_client_gone([this] { gone_++; });
      std::lock_guard<std::mutex> lock(mu_);
      held_.push_back(ex);
    } else if (path == "/block") {
      // a handler that keeps its I/O thread until the test lets it go
      blocked_++;
      while (!release_) std::this_thread::sleep_for(std::chrono::milliseconds(1));
      ex->respond({200, "text/plain", {}, "late"});
    } else if (path == "/stream" || path == "/slow") {
      bool stream = path == "/stream";
      if (stream) ex->start_stream();
      ex->on_client_gone([this] { gone_++; });
      workers_.emplace_back([this, ex, stream] {
        for (int i = 0; i < (stream ? 100 : 1); ++i) {
          std::this_thread::sleep_for(std::chrono::milliseconds(stream ? 10 : 300));
          auto gone = std::make_shared<std::atomic<int>>(-1);
          ex->post([ex, gone, stream, i] {
            bool g = ex->client_gone();
            if (!g && stream) ex->send(sse_data("{\"i\":" + std::to_string(i) + "}"));
            *gone = g ? 1 : 0;
          });
          while (*gone < 0 && !stopping_) std::this_thread::sleep_for(std::chrono::milliseconds(1));
          if (*gone != 0) return;
        }
        ex->post([ex, stream] {
          if (stream) {
            ex->send(sse_done());
            ex->end_stream();
          } else {
            ex->respond({200, "text/plain", {}, "slow"});
          }
        });
      });
    } else {
      ex->respond_error(error_with_status(404, "no route"));
    }
  }

  std::unique_ptr<Server> server_;
  std::thread thread_;
  std::vector<std::thread> workers_;
  std::atomic<int> gone_{0};
  std::atomic<bool> stopping_{false};
  std::atomic<int> blocked_{0};
  std::atomic<bool> release_{false};
  std::vector<ExchangePtr> held_;  // guarded by mu_
  bool run_result_ = true;
  std::mutex mu_;
  std::vector<AccessRecord> records_;
};

TEST_F(ServerTest, AnswersAndKeepsTheConnectionAlive) {
  start();
  RawClient c(server_->port());
  ASSERT_TRUE(c.connected());
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(c.send(http_request("GET", "/hello", "", "X-Request-ID: abc-" + std::to_string(i) + "\r\n")));
    auto r = c.read_response();
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body, "hello");
    EXPECT_EQ(r->header("x-request-id"), "abc-" + std::to_string(i));
    EXPECT_EQ(r->header("connection"), "");
  }
}

TEST_F(ServerTest, GeneratesARequestIdWhenTheClientsIsUnusable) {
  start();
  RawClient c(server_->port());
  ASSERT_TRUE(c.send(http_request("GET", "/hello", "", "X-Request-ID: has space\r\n")));
  auto r = c.read_response();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->header("x-request-id").rfind("req_", 0), 0u);
  EXPECT_EQ(r->header("x-request-id").size(), 28u);
}

TEST_F(ServerTest, PipelinedRequestsAreAnsweredInOrderAndGarbageAfterThemGets400) {
  start();
  RawClient c(server_->port());
  ASSERT_TRUE(c.send(http_request("POST", "/echo", "one") + http_request("POST", "/echo", "two") +
                     "GARBAGE \x01\x02 NOT HTTP\r\n\r\n"));
  auto a = c.read_response();
  auto b = c.read_response();
  auto g = c.read_response();
  ASSERT_TRUE(a && b && g);
  EXPECT_EQ(a->body, "one");
  EXPECT_EQ(b->body, "two");
  EXPECT_EQ(g->status, 400);
  EXPECT_NE(g->body.find("\"error\""), std::string::npos);
  EXPECT_EQ(g->header("connection"), "close");
  EXPECT_TRUE(c.closed_by_peer(3000));
  // The server survives.
  RawClient d(server_->port());
  ASSERT_TRUE(d.send(http_request("GET", "/hello")));
  EXPECT_EQ(d.read_response()->status, 200);
}

TEST_F(ServerTest, BodyOverTheLimitGets413) {
  ServerOptions o;
  o.max_body_bytes = 1000;
  start(o);
  RawClient c(server_->port());
  ASSERT_TRUE(c.send(http_request("POST", "/echo", std::string(5000, 'x'))));
  auto r = c.read_response();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 413);
  EXPECT_NE(r->body.find("1000 bytes"), std::string::npos);
  // Chunked bodies are counted as they arrive.
  RawClient d(server_->port());
  std::string chunked = "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (int i = 0; i < 3; ++i) chunked += "200\r\n" + std::string(512, 'y') + "\r\n";
  chunked += "0\r\n\r\n";
  ASSERT_TRUE(d.send(chunked));
  auto r2 = d.read_response();
  ASSERT_TRUE(r2.has_value());
  EXPECT_EQ(r2->status, 413);
}

TEST_F(ServerTest, HeadersOverTheLimitGet431) {
  ServerOptions o;
  o.max_header_bytes = 2048;
  start(o);
  RawClient c(server_->port());
  ASSERT_TRUE(c.send(http_request("GET", "/hello", "", "X-Big: " + std::string(4000, 'a') + "\r\n")));
  auto r = c.read_response();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 431);
}

TEST_F(ServerTest, ExpectContinueIsHonoured) {
  start();
  RawClient c(server_->port());
  ASSERT_TRUE(c.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"));
  auto first = c.read_some(2000);
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->rfind("HTTP/1.1 100 Continue", 0), 0u);
  ASSERT_TRUE(c.send("hello"));
  auto r = c.read_response();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->body, "hello");
}

TEST_F(ServerTest, SlowClientTimesOutWith408WhileOthersAreServed) {
  ServerOptions o;
  o.read_timeout = std::chrono::milliseconds(300);
  start(o);
  RawClient slow(server_->port());
  ASSERT_TRUE(slow.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Le"));
  RawClient fast(server_->port());
  ASSERT_TRUE(fast.send(http_request("GET", "/hello")));
  EXPECT_EQ(fast.read_response()->status, 200);
  auto r = slow.read_response(3000);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 408);
  EXPECT_TRUE(slow.closed_by_peer(3000));
}

TEST_F(ServerTest, IdleKeepAliveConnectionsAreClosed) {
  ServerOptions o;
  o.idle_timeout = std::chrono::milliseconds(200);
  start(o);
  RawClient c(server_->port());
  ASSERT_TRUE(c.send(http_request("GET", "/hello")));
  EXPECT_EQ(c.read_response()->status, 200);
  EXPECT_TRUE(c.closed_by_peer(3000));
}

TEST_F(ServerTest, TruncatedBodyGets400) {
  start();
  RawClient c(server_->port());
  ASSERT_TRUE(c.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nshort"));
  c.shutdown_write();
  auto r = c.read_response(3000);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 400);
  EXPECT_NE(r->body.find("truncated"), std::string::npos);
}

TEST_F(ServerTest, StreamsAreChunkedAndAClientThatLeavesIsNoticedAtOnce) {
  start();
  RawClient c(server_->port());
  ASSERT_TRUE(c.send(http_request("GET", "/stream")));
  auto first = c.read_some(3000);
  ASSERT_TRUE(first.has_value());
  EXPECT_NE(first->find("text/event-stream"), std::string::npos);
  EXPECT_NE(first->find("Transfer-Encoding: chunked"), std::string::npos);
  c.abort();
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  while (gone_.load() == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(gone_.load(), 1);
}

TEST_F(ServerTest, AWholeStreamArrivesInOrder) {
  start();
  RawClient c(server_->port());
  ASSERT_TRUE(c.send(http_request("GET", "/stream")));
  auto r = c.read_response(10000);
  ASSERT_TRUE(r.has_value());
  std::string want;
  for (int i = 0; i < 100; ++i) want += "data: {\"i\":" + std::to_string(i) + "}\n\n";
  want += "data: [DONE]\n\n";
  EXPECT_EQ(r->body, want);
}

TEST_F(ServerTest, ADroppedExchangeAnswers500) {
  start();
  RawClient c(server_->port());
  ASSERT_TRUE(c.send(http_request("GET", "/drop")));
  auto r = c.read_response();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 500);
  ASSERT_TRUE(c.send(http_request("GET", "/hello")));
  EXPECT_EQ(c.read_response()->status, 200);
}

TEST_F(ServerTest, ConnectionsOverTheCapGet503) {
  ServerOptions o;
  o.max_connections = 2;
  start(o);
  RawClient a(server_->port()), b(server_->port());
  ASSERT_TRUE(a.send(http_request("GET", "/hello")));
  ASSERT_TRUE(b.send(http_request("GET", "/hello")));
  EXPECT_EQ(a.read_response()->status, 200);
  EXPECT_EQ(b.read_response()->status, 200);
  RawClient c(server_->port());
  auto r = c.read_response(3000);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 503);
  EXPECT_EQ(r->header("retry-after"), "1");
}

TEST_F(ServerTest, ShutdownLetsInFlightRequestsFinishAndRefusesNewOnes) {
  start();
  RawClient c(server_->port());
  ASSERT_TRUE(c.send(http_request("GET", "/slow")));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  server_->shutdown(std::chrono::milliseconds(5000));
  auto r = c.read_response(5000);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "slow");
  EXPECT_EQ(r->header("connection"), "close");
  thread_.join();
  RawClient late(server_->port());
  EXPECT_FALSE(late.connected());
}

TEST_F(ServerTest, DrainTimeoutClosesWhatIsLeft) {
  start();
  RawClient c(server_->port());
  ASSERT_TRUE(c.send(http_request("GET", "/stream")));
  ASSERT_TRUE(c.read_some(3000).has_value());
  auto t0 = std::chrono::steady_clock::now();
  server_->shutdown(std::chrono::milliseconds(100));
  thread_.join();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(2));
  EXPECT_EQ(gone_.load(), 1);
}

TEST_F(ServerTest, EveryRequestIsRecordedOnce) {
  start();
  {
    RawClient c(server_->port());
    ASSERT_TRUE(c.send(http_request("GET", "/hello") + http_request("GET", "/nope")));
    c.read_response();
    c.read_response();
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  std::lock_guard<std::mutex> lock(mu_);
  ASSERT_EQ(records_.size(), 2u);
  EXPECT_EQ(records_[0].status, 200);
  EXPECT_EQ(records_[1].status, 404);
  EXPECT_EQ(records_[1].error, "no route");
}

TEST_F(ServerTest, TransferCodingsOtherThanChunkedAreRefused) {
  start();
  {
    // Beast would take this body as empty and the JSON after it as the next request.
    RawClient c(server_->port());
    ASSERT_TRUE(c.send("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\n\r\n{\"a\":1}"));
    auto r = c.read_response();
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->status, 400);
    EXPECT_NE(r->body.find("Transfer-Encoding 'identity'"), std::string::npos) << r->body;
    EXPECT_EQ(r->header("connection"), "close");
    EXPECT_TRUE(c.closed_by_peer(3000));
  }
  {
    RawClient c(server_->port());
    ASSERT_TRUE(c.send("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"));
    auto r = c.read_response();
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->status, 501);
    EXPECT_NE(r->body.find("'gzip'"), std::string::npos) << r->body;
  }
  {
    RawClient c(server_->port());
    ASSERT_TRUE(c.send("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\nContent-Length: 5\r\n\r\nhello"));
    auto r = c.read_response();
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->status, 400);
  }
  // chunked alone still works.
  RawClient c(server_->port());
  ASSERT_TRUE(c.send("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"));
  auto r = c.read_response();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "hello");
}

TEST_F(ServerTest, ADrainThatExpiresEndsEachStreamWithAnErrorEventAndTheTerminator) {
  start();
  RawClient s(server_->port()), w(server_->port());
  ASSERT_TRUE(s.send(http_request("GET", "/stream")));
  ASSERT_TRUE(w.send(http_request("GET", "/wait")));
  ASSERT_TRUE(s.read_some(3000).has_value());
  while (true) {  // until /wait has reached its handler
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!held_.empty()) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  server_->shutdown(std::chrono::milliseconds(100));
  std::string all;
  while (true) {
    auto part = s.read_some(5000);
    if (!part) break;  // the server closed the connection
    ASSERT_FALSE(part->empty()) << "the stream stalled: " << all;
    all += *part;
  }
  ASSERT_GE(all.size(), 5u);
  EXPECT_EQ(all.substr(all.size() - 5), "0\r\n\r\n") << "no chunked terminator: " << all;
  const size_t err = all.rfind("data: {\"error\":");
  ASSERT_NE(err, std::string::npos) << all;
  EXPECT_NE(all.find("\"code\":\"server_shutting_down\"", err), std::string::npos) << all.substr(err);
  EXPECT_EQ(all.find("data: ", err + 1), std::string::npos) << "an event after the error";
  // A request that had not answered yet gets a 503.
  auto q = w.read_response(5000);
  ASSERT_TRUE(q.has_value());
  EXPECT_EQ(q->status, 503);
  EXPECT_NE(q->body.find("server_shutting_down"), std::string::npos);
  EXPECT_EQ(q->header("connection"), "close");
  thread_.join();
  EXPECT_EQ(gone_.load(), 2);  // both handlers heard that their work is abandoned
  std::lock_guard<std::mutex> lock(mu_);
  ASSERT_EQ(records_.size(), 2u);
  EXPECT_EQ(records_[0].status, 503);
  EXPECT_EQ(records_[1].status, 503);
}

TEST_F(ServerTest, TheDrainDeadlineHoldsEvenWhenAHandlerNeverReturns) {
  ServerOptions o;
  o.drain_grace = std::chrono::milliseconds(200);
  start(o);
  RawClient c(server_->port());
  ASSERT_TRUE(c.send(http_request("GET", "/block")));
  while (!blocked_.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  // Both I/O threads busy: the drain and its deadline must not need one.
  RawClient d(server_->port());
  ASSERT_TRUE(d.send(http_request("GET", "/block")));
  while (blocked_.load() < 2) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  auto t0 = std::chrono::steady_clock::now();
  server_->shutdown(std::chrono::milliseconds(100));
  thread_.join();  // run() has returned
  const auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_FALSE(run_result_) << "run() claims its I/O threads stopped while two are blocked";
  EXPECT_LT(took, std::chrono::seconds(10));  // 100 ms drain + 200 ms grace + 500 ms, whatever the load
  release_ = true;  // the destructor waits for the blocked threads
  server_.reset();
}

}  // namespace
}  // namespace kiln::http
