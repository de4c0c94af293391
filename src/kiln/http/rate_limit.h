// Rate limits on the HTTP side (docs/jobs.md, "Rate limits"): names the client (its API key's id,
// or its address when no keys are configured), takes a request from its request bucket when a
// generation request arrives, charges prompt + most output tokens when it is submitted, refunds
// what it did not use once it is answered, and sends the x-ratelimit-* headers and the 429s.
#pragma once

#include <map>
#include <optional>
#include <string>

#include "kiln/http/access_log.h"
#include "kiln/http/errors.h"
#include "kiln/http/exchange.h"
#include "kiln/jobs/rate_limiter.h"
#include "kiln/metrics/metrics.h"

namespace kiln::http {

struct RateLimitSettings {
  jobs::RateLimit global;                         // --rate-limit-rpm, --rate-limit-tpm
  // key_id -> limits from the keys file; a field of -1 is unset (the global limit applies).
  std::map<std::string, jobs::RateLimit> by_key;
  bool api_keys = false;                          // clients are keys (else addresses)
  bool any() const;
};

class RateLimits {
 public:
  RateLimits(RateLimitSettings settings, metrics::Registry& registry,
             jobs::RateLimiter::Clock clock = jobs::RateLimiter::steady_now_ms);

  // A generation request arrived: takes one from its client's request bucket (the 429 when empty).
  std::optional<ApiError> admit(const ExchangePtr& ex);
  // Any other /v1/ request: the headers only, taking nothing.
  void show(const ExchangePtr& ex);
  // About to submit: charges `tokens` (the 429 when the client's token bucket lacks them).
  std::optional<ApiError> charge(const ExchangePtr& ex, int64_t tokens);
  // Every answered exchange: gives back the charged tokens the request did not use.
  void on_done(const AccessRecord& r);

  jobs::RateLimiter& limiter() { return limiter_; }

 private:
  jobs::RateLimit limit_of(const std::string& client) const;
  ApiError refusal(const jobs::RateDecision& d, int64_t requested) const;

  const RateLimitSettings settings_;
  jobs::RateLimiter limiter_;
  metrics::Counter* rejected_requests_ = nullptr;
  metrics::Counter* rejected_tokens_ = nullptr;
};

// The x-ratelimit-* headers OpenAI sends, for the buckets that have a limit.
Headers rate_limit_headers(const jobs::RateDecision& d);

}  // namespace kiln::http
