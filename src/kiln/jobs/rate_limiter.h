// Per-client rate limits (docs/jobs.md, "Rate limits"): requests per minute and tokens per minute,
// each a token bucket that holds a minute's allowance and refills continuously. Knows no HTTP: the
// HTTP layer names the client (an API key's id or an address) and sends the answers and headers.
//
// Several nodes: RateLimitSync (rate_sync.h) reports this node's consumption to a shared
// PostgreSQL table and debits the other nodes' consumption from the local buckets
// (apply_remote), so a limit holds across the fleet within the tolerance docs/jobs.md states.
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace kiln::jobs {

// 0: no limit of that kind.
struct RateLimit {
  int64_t rpm = 0;
  int64_t tpm = 0;
  bool any() const { return rpm > 0 || tpm > 0; }
};

// One bucket as the x-ratelimit-* headers show it.
struct BucketView {
  int64_t limit = 0;      // 0: unlimited (no headers)
  int64_t remaining = 0;  // whole units left now
  int64_t reset_ms = 0;   // until the bucket is full again
};

struct RateDecision {
  bool allowed = true;
  std::string exceeded;       // "requests" or "tokens" when refused
  bool never_fits = false;    // the request asks for more tokens than a whole minute allows
  int64_t retry_after_ms = 0;  // when refused: until the bucket holds what was asked
  BucketView requests, tokens;
};

// Net consumption of one client since the last changed_usage() (tokens net of refunds).
struct ClientUsage {
  std::string client;
  int64_t requests = 0;
  int64_t tokens = 0;
};

class RateLimiter {
 public:
  using Clock = std::function<int64_t()>;  // milliseconds on a monotonic clock
  using Limits = std::function<RateLimit(const std::string& client)>;
  // At most this many clients are tracked; past it, clients whose buckets are full (they carry
  // nothing) are forgotten, then the longest idle tenth.
  static constexpr size_t kMaxClients = 100000;

  explicit RateLimiter(Limits limits, Clock now = steady_now_ms);

  // Takes one request from the client's request bucket.
  RateDecision admit_request(const std::string& client);
  // Takes `tokens` from the client's token bucket (prompt + most output tokens, at admission).
  RateDecision charge_tokens(const std::string& client, int64_t tokens);
  // Gives back what a finished request did not use.
  void refund_tokens(const std::string& client, int64_t tokens);
  // The buckets as they stand, taking nothing.
  RateDecision peek(const std::string& client);

  // Every client's consumption since the last call, for the clients that consumed.
  std::vector<ClientUsage> changed_usage();
  // Other nodes consumed this much of `client`'s allowance (negative: they refunded).
  void apply_remote(const std::string& client, int64_t requests, int64_t tokens);

  size_t clients() const;
  static int64_t steady_now_ms();

 private:
  struct Bucket {
    double level = 0;  // may fall below 0 when other nodes consumed more than this one held
    int64_t capacity = 0;
    void refill(int64_t elapsed_ms);
    BucketView view() const;
  };
  struct Client {
    Bucket requests, tokens;
    int64_t last_ms = 0;
    ClientUsage usage;  // not yet taken by changed_usage()
    bool changed = false;
  };
  Client& client_locked(const std::string& id, int64_t now);
  RateDecision decide_locked(Client& c) const;
  void evict_locked();

  Limits limits_;
  Clock now_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, Client> clients_;
};

// "20ms", "1.5s", "6m0s": the duration format of OpenAI's x-ratelimit-reset-* headers.
std::string format_reset(int64_t ms);

}  // namespace kiln::jobs
