#include "bench_serve/runner.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <csignal>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "kiln/core/log.h"
#include "kiln/core/str.h"

namespace kiln::bench_serve {
namespace {

namespace asio = boost::asio;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
// After a failed connect a client pauses this long, so a server that is down yields a bounded
// stream of errors instead of a busy loop.
constexpr auto kConnectBackoff = std::chrono::milliseconds(100);

struct Phase {
  bool warmup = false;
  int64_t count = -1;  // -1: unlimited
  std::optional<SteadyTime> deadline;
  int concurrency = 1;      // fixed-concurrency clients
  double request_rate = 0;  // > 0: Poisson arrivals instead
  int max_concurrency = 0;
};

class Runner {
 public:
  Runner(const RunSettings& settings, const Workload& workload) : settings_(settings), workload_(workload) {
    client_ = settings.client;
    client_.stopping = &stopping_;
    int n = std::max(1, settings.threads);
    for (int i = 0; i < n; ++i) {
      contexts_.push_back(std::make_unique<asio::io_context>(1));
      pools_.push_back(std::make_unique<ConnectionPool>(contexts_.back()->get_executor()));
      records_.emplace_back();
    }
    if (settings.handle_signals) signals_.emplace(*contexts_[0], SIGINT, SIGTERM);
  }

  std::vector<RequestRecord> run_phase(const Phase& phase);
  bool interrupted() const { return stopping_.load(); }
  int64_t connections_opened() const {
    int64_t n = 0;
    for (const auto& p : pools_) n += p->connections_opened();
    return n;
  }

 private:
  asio::io_context& ctx(size_t i) { return *contexts_[i % contexts_.size()]; }

  // Every top-level coroutine of a phase is counted; the phase ends when the count drops to 0.
  template <typename Awaitable>
  void spawn(size_t ctx_index, Awaitable task) {
    outstanding_.fetch_add(1);
    asio::co_spawn(ctx(ctx_index), std::move(task), [this](std::exception_ptr e) {
      if (e) {
        try {
          std::rethrow_exception(e);
        } catch (const std::exception& ex) {
          log_error("bench serve: a client failed: ", ex.what());
        }
      }
      if (outstanding_.fetch_sub(1) == 1) {
        { std::lock_guard<std::mutex> lock(mu_); }
        cv_.notify_all();
      }
    });
  }

  asio::awaitable<void> one_request(size_t ctx_index, int64_t index, bool warmup) {
    RequestSpec spec = workload_.request(static_cast<uint64_t>(index), warmup);
    RequestRecord rec = co_await send_request(*pools_[ctx_index % pools_.size()], settings_.target, client_,
                                              build_request_body(spec, settings_.body), spec);
    rec.index = index;
    rec.warmup = warmup;
    bool connect_failed = rec.error == ErrorKind::kConnect;
    records_[ctx_index % records_.size()].push_back(std::move(rec));
    done_.fetch_add(1, std::memory_order_relaxed);
    if (connect_failed && !stopping_.load()) {
      asio::steady_timer pause(co_await asio::this_coro::executor, kConnectBackoff);
      co_await pause.async_wait(kTuple);
    }
  }

  asio::awaitable<void> client_loop(size_t ctx_index, const Phase& phase) {
    while (!stopping_.load()) {
      int64_t i = next_index_.fetch_add(1);
      if (phase.count >= 0 && i >= phase.count) break;
      if (phase.deadline && SteadyTime::clock::now() >= *phase.deadline) break;
      co_await one_request(ctx_index, i, phase.warmup);
    }
  }

  asio::awaitable<void> dispatcher(const Phase& phase, SteadyTime start) {
    Rng rng(mix_seed(settings_.seed, 0x5EED'A001'0000ull));
    SteadyTime arrival = start;
    bool all_at_once = std::isinf(phase.request_rate);
    for (int64_t i = 0; phase.count < 0 || i < phase.count; ++i) {
      if (!all_at_once) {
        arrival += std::chrono::duration_cast<SteadyTime::duration>(
            std::chrono::duration<double>(rng.exponential(phase.request_rate)));
        if (phase.deadline && arrival >= *phase.deadline) break;
        arrival_timer_->expires_at(arrival);
        co_await arrival_timer_->async_wait(kTuple);
      }
      while (phase.max_concurrency > 0 && in_flight_ >= phase.max_concurrency && !stopping_.load()) {
        slot_timer_->expires_at(SteadyTime::max());
        co_await slot_timer_->async_wait(kTuple);  // cancelled when a request ends
      }
      if (stopping_.load()) break;
      ++in_flight_;
      size_t k = static_cast<size_t>(i) % contexts_.size();
      spawn(k, request_then_free_slot(k, i, phase.warmup));
    }
  }

  asio::awaitable<void> request_then_free_slot(size_t ctx_index, int64_t index, bool warmup) {
    co_await one_request(ctx_index, index, warmup);
    asio::post(ctx(0), [this] {
      --in_flight_;
      slot_timer_->cancel();
    });
  }

  void arm_signals() {
    if (!signals_) return;
    signals_->async_wait([this](const boost::system::error_code& ec, int signo) {
      if (ec) return;  // cancelled at the end of a phase
      log_warn("bench serve: got signal ", signo, ", stopping; requests in flight are abandoned");
      stopping_.store(true);
      if (arrival_timer_) arrival_timer_->cancel();
      if (slot_timer_) slot_timer_->cancel();
      for (size_t i = 0; i < contexts_.size(); ++i) {
        asio::post(ctx(i), [pool = pools_[i].get()] { pool->close_all(); });
      }
    });
  }

  void arm_progress(SteadyTime start, int64_t total) {
    if (settings_.progress_interval_s <= 0) return;
    progress_timer_->expires_after(std::chrono::duration_cast<SteadyTime::duration>(
        std::chrono::duration<double>(settings_.progress_interval_s)));
    progress_timer_->async_wait([this, start, total](const boost::system::error_code& ec) {
      if (ec) return;
      double t = seconds_between(start, SteadyTime::clock::now());
      int64_t done = done_.load();
      if (total >= 0) {
        log_info("bench serve: ", done, "/", total, " requests done after ", static_cast<int64_t>(t), " s");
      } else {
        log_info("bench serve: ", done, " requests done after ", static_cast<int64_t>(t), " s");
      }
      arm_progress(start, total);
    });
  }

  const RunSettings& settings_;
  const Workload& workload_;
  ClientSettings client_;
  std::vector<std::unique_ptr<asio::io_context>> contexts_;
  std::vector<std::unique_ptr<ConnectionPool>> pools_;
  std::vector<std::vector<RequestRecord>> records_;  // per I/O thread, touched only by it
  std::optional<asio::signal_set> signals_;
  std::unique_ptr<asio::steady_timer> arrival_timer_, slot_timer_, progress_timer_;  // on thread 0
  int in_flight_ = 0;  // thread 0 only
  std::atomic<bool> stopping_{false};
  std::atomic<int64_t> next_index_{0};
  std::atomic<int64_t> done_{0};
  std::atomic<int> outstanding_{0};
  std::mutex mu_;
  std::condition_variable cv_;
};

std::vector<RequestRecord> Runner::run_phase(const Phase& phase) {
  for (auto& c : contexts_) c->restart();
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> guards;
  for (auto& c : contexts_) guards.push_back(asio::make_work_guard(*c));
  arrival_timer_ = std::make_unique<asio::steady_timer>(ctx(0));
  slot_timer_ = std::make_unique<asio::steady_timer>(ctx(0));
  progress_timer_ = std::make_unique<asio::steady_timer>(ctx(0));
  next_index_ = 0;
  done_ = 0;
  in_flight_ = 0;

  SteadyTime start = SteadyTime::clock::now();
  Phase p = phase;
  if (settings_.duration_s > 0 && !phase.warmup) {
    p.deadline = start + std::chrono::duration_cast<SteadyTime::duration>(
                             std::chrono::duration<double>(settings_.duration_s));
  }
  arm_signals();
  arm_progress(start, p.count);
  if (!stopping_.load()) {
    if (p.request_rate > 0) {
      spawn(0, dispatcher(p, start));
    } else {
      for (int w = 0; w < p.concurrency; ++w) spawn(static_cast<size_t>(w), client_loop(static_cast<size_t>(w), p));
    }
  }

  std::vector<std::thread> threads;
  for (auto& c : contexts_) threads.emplace_back([io = c.get()] { io->run(); });
  {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return outstanding_.load() == 0; });
  }
  asio::post(ctx(0), [this] {
    if (signals_) signals_->cancel();
    progress_timer_->cancel();
  });
  guards.clear();
  for (auto& t : threads) t.join();
  arrival_timer_.reset();
  slot_timer_.reset();
  progress_timer_.reset();

  std::vector<RequestRecord> out;
  for (auto& r : records_) {
    std::move(r.begin(), r.end(), std::back_inserter(out));
    r.clear();
  }
  std::sort(out.begin(), out.end(), [](const RequestRecord& a, const RequestRecord& b) { return a.index < b.index; });
  return out;
}

}  // namespace

Result<RunResult> run_benchmark(const RunSettings& settings, const Workload& workload) {
  if (settings.request_rate <= 0 && settings.concurrency < 1) return invalid_argument("--concurrency must be at least 1");
  if (settings.max_concurrency < 0) return invalid_argument("--max-concurrency must not be negative");
  if (settings.num_requests < 0 && settings.duration_s <= 0) {
    return invalid_argument("an unlimited number of requests needs --duration");
  }
  if (settings.warmup < 0) return invalid_argument("--warmup must not be negative");
  if (settings.threads < 1 || settings.threads > 64) return invalid_argument("--threads must be in [1, 64]");
  if (settings.target.endpoints.empty()) return failed_precondition("the target address was not resolved");

  Runner runner(settings, workload);
  RunResult result;
  if (settings.warmup > 0) {
    Phase warm;
    warm.warmup = true;
    warm.count = settings.warmup;
    int cap = settings.request_rate > 0 ? (settings.max_concurrency > 0 ? settings.max_concurrency : settings.warmup)
                                        : settings.concurrency;
    warm.concurrency = std::min(settings.warmup, cap);
    result.warmup = runner.run_phase(warm);
    bool any_ok = std::any_of(result.warmup.begin(), result.warmup.end(), [](const RequestRecord& r) { return r.ok(); });
    if (!any_ok && !runner.interrupted()) {
      const RequestRecord& first = result.warmup.front();
      return unavailable(str_cat("every warmup request failed; the first with ", error_kind_name(first.error), ": ",
                                 first.error_message));
    }
  }
  Phase measured;
  measured.count = settings.num_requests;
  measured.concurrency = settings.concurrency;
  measured.request_rate = settings.request_rate;
  measured.max_concurrency = settings.max_concurrency;
  result.start = SteadyTime::clock::now();
  result.measured = runner.run_phase(measured);
  result.end = result.start;
  for (const RequestRecord& r : result.measured) result.end = std::max(result.end, r.finished);
  result.interrupted = runner.interrupted();
  result.connections_opened = runner.connections_opened();
  return result;
}

}  // namespace kiln::bench_serve
