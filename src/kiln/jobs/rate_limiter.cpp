#include "kiln/jobs/rate_limiter.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>

namespace kiln::jobs {

namespace {

constexpr double kMinuteMs = 60000.0;

// Milliseconds until `level` reaches `want` at `capacity` per minute.
int64_t ms_until(double level, double want, int64_t capacity) {
  if (level >= want || capacity <= 0) return 0;
  return static_cast<int64_t>(std::ceil((want - level) * kMinuteMs / static_cast<double>(capacity)));
}

}  // namespace

int64_t RateLimiter::steady_now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::string format_reset(int64_t ms) {
  if (ms < 1000) return std::to_string(std::max<int64_t>(ms, 0)) + "ms";
  const int64_t minutes = ms / 60000;
  char secs[32];
  std::snprintf(secs, sizeof(secs), "%g", static_cast<double>(ms % 60000) / 1000.0);
  return (minutes > 0 ? std::to_string(minutes) + "m" : std::string()) + secs + "s";
}

void RateLimiter::Bucket::refill(int64_t elapsed_ms) {
  if (capacity <= 0 || elapsed_ms <= 0) return;
  level = std::min(static_cast<double>(capacity), level + static_cast<double>(elapsed_ms) * static_cast<double>(capacity) / kMinuteMs);
}

BucketView RateLimiter::Bucket::view() const {
  BucketView v;
  v.limit = capacity;
  if (capacity <= 0) return v;
  v.remaining = std::max<int64_t>(0, static_cast<int64_t>(std::floor(level)));
  v.reset_ms = ms_until(level, static_cast<double>(capacity), capacity);
  return v;
}

RateLimiter::RateLimiter(Limits limits, Clock now) : limits_(std::move(limits)), now_(std::move(now)) {}

RateLimiter::Client& RateLimiter::client_locked(const std::string& id, int64_t now) {
  auto it = clients_.find(id);
  if (it == clients_.end()) {
    if (clients_.size() >= kMaxClients) evict_locked();
    const RateLimit l = limits_(id);
    Client c;
    c.requests.capacity = l.rpm;
    c.requests.level = static_cast<double>(l.rpm);
    c.tokens.capacity = l.tpm;
    c.tokens.level = static_cast<double>(l.tpm);
    c.last_ms = now;
    c.usage.client = id;
    it = clients_.emplace(id, std::move(c)).first;
  }
  Client& c = it->second;
  c.requests.refill(now - c.last_ms);
  c.tokens.refill(now - c.last_ms);
  c.last_ms = std::max(c.last_ms, now);
  return c;
}

void RateLimiter::evict_locked() {
  // A client whose buckets are full is as good as new: forgetting it changes no answer. (Under this
  // much pressure, consumption not yet synced to the other nodes is forgotten with it.)
  const int64_t now = now_();
  auto full = [now](const Client& c, const Bucket& b) {
    return b.capacity <= 0 ||
           b.level + static_cast<double>(now - c.last_ms) * static_cast<double>(b.capacity) / kMinuteMs >= static_cast<double>(b.capacity);
  };
  std::erase_if(clients_, [&](const auto& kv) { return full(kv.second, kv.second.requests) && full(kv.second, kv.second.tokens); });
  if (clients_.size() < kMaxClients) return;
  // Every client is mid-minute: the longest idle tenth goes, so that this runs once per many new clients.
  std::vector<std::pair<int64_t, std::string>> idle;
  idle.reserve(clients_.size());
  for (const auto& [id, c] : clients_) idle.emplace_back(c.last_ms, id);
  const size_t drop = clients_.size() / 10 + 1;
  std::nth_element(idle.begin(), idle.begin() + static_cast<std::ptrdiff_t>(drop - 1), idle.end());
  for (size_t i = 0; i < drop; ++i) clients_.erase(idle[i].second);
}

RateDecision RateLimiter::decide_locked(Client& c) const {
  RateDecision d;
  d.requests = c.requests.view();
  d.tokens = c.tokens.view();
  return d;
}

RateDecision RateLimiter::admit_request(const std::string& client) {
  std::lock_guard<std::mutex> lk(mu_);
  Client& c = client_locked(client, now_());
  if (c.requests.capacity > 0) {
    if (c.requests.level < 1.0) {
      RateDecision d = decide_locked(c);
      d.allowed = false;
      d.exceeded = "requests";
      d.retry_after_ms = ms_until(c.requests.level, 1.0, c.requests.capacity);
      return d;
    }
    c.requests.level -= 1.0;
  }
  c.usage.requests += 1;
  c.changed = true;
  return decide_locked(c);
}

RateDecision RateLimiter::charge_tokens(const std::string& client, int64_t tokens) {
  std::lock_guard<std::mutex> lk(mu_);
  Client& c = client_locked(client, now_());
  if (c.tokens.capacity > 0) {
    const double want = static_cast<double>(tokens);
    if (tokens > c.tokens.capacity || c.tokens.level < want) {
      RateDecision d = decide_locked(c);
      d.allowed = false;
      d.exceeded = "tokens";
      d.never_fits = tokens > c.tokens.capacity;
      d.retry_after_ms = d.never_fits ? 60000 : ms_until(c.tokens.level, want, c.tokens.capacity);
      return d;
    }
    c.tokens.level -= want;
  }
  c.usage.tokens += tokens;
  c.changed = true;
  return decide_locked(c);
}

void RateLimiter::refund_tokens(const std::string& client, int64_t tokens) {
  if (tokens <= 0) return;
  std::lock_guard<std::mutex> lk(mu_);
  Client& c = client_locked(client, now_());
  if (c.tokens.capacity > 0) c.tokens.level = std::min(static_cast<double>(c.tokens.capacity), c.tokens.level + static_cast<double>(tokens));
  c.usage.tokens -= tokens;
  c.changed = true;
}

RateDecision RateLimiter::peek(const std::string& client) {
  std::lock_guard<std::mutex> lk(mu_);
  return decide_locked(client_locked(client, now_()));
}

std::vector<ClientUsage> RateLimiter::changed_usage() {
  std::lock_guard<std::mutex> lk(mu_);
  std::vector<ClientUsage> out;
  for (auto& [id, c] : clients_) {
    if (!c.changed) continue;
    c.changed = false;
    out.push_back(c.usage);
    c.usage.requests = c.usage.tokens = 0;
  }
  return out;
}

void RateLimiter::apply_remote(const std::string& client, int64_t requests, int64_t tokens) {
  std::lock_guard<std::mutex> lk(mu_);
  Client& c = client_locked(client, now_());
  // Other nodes may have taken more than this node's bucket held: the level goes negative (down to
  // a minute's allowance), so this node waits for the fleet's excess to refill too.
  auto debit = [](Bucket& b, int64_t n) {
    if (b.capacity <= 0) return;
    b.level = std::clamp(b.level - static_cast<double>(n), -static_cast<double>(b.capacity), static_cast<double>(b.capacity));
  };
  debit(c.requests, requests);
  debit(c.tokens, tokens);
}

size_t RateLimiter::clients() const {
  std::lock_guard<std::mutex> lk(mu_);
  return clients_.size();
}

}  // namespace kiln::jobs
