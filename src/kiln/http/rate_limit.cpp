#include "kiln/http/rate_limit.h"

#include <algorithm>

#include "kiln/core/str.h"
#include "kiln/http/auth.h"

namespace kiln::http {

bool RateLimitSettings::any() const {
  if (global.any()) return true;
  return std::any_of(by_key.begin(), by_key.end(), [](const auto& kv) { return kv.second.any(); });
}

RateLimits::RateLimits(RateLimitSettings settings, metrics::Registry& registry, jobs::RateLimiter::Clock clock)
    : settings_(std::move(settings)),
      limiter_([this](const std::string& client) { return limit_of(client); }, std::move(clock)) {
  const std::string help = "Requests refused with 429 by a rate limit, by the limit they exceeded.";
  rejected_requests_ = &registry.counter("kiln_rate_limited_total", help, {{"limit", "requests"}});
  rejected_tokens_ = &registry.counter("kiln_rate_limited_total", help, {{"limit", "tokens"}});
  registry.gauge_fn("kiln_rate_limit_clients", "Clients whose rate-limit buckets are tracked.", {},
                    [this] { return static_cast<double>(limiter_.clients()); });
}

jobs::RateLimit RateLimits::limit_of(const std::string& client) const {
  auto it = settings_.by_key.find(client);
  if (it == settings_.by_key.end()) return settings_.global;
  // A key's own limit replaces the global one of the same kind; one it leaves unset keeps it.
  jobs::RateLimit l = it->second;
  if (l.rpm < 0) l.rpm = settings_.global.rpm;
  if (l.tpm < 0) l.tpm = settings_.global.tpm;
  return l;
}

Headers rate_limit_headers(const jobs::RateDecision& d) {
  Headers h;
  auto add = [&h](const char* kind, const jobs::BucketView& b) {
    if (b.limit <= 0) return;
    h.emplace_back(str_cat("x-ratelimit-limit-", kind), std::to_string(b.limit));
    h.emplace_back(str_cat("x-ratelimit-remaining-", kind), std::to_string(b.remaining));
    h.emplace_back(str_cat("x-ratelimit-reset-", kind), jobs::format_reset(b.reset_ms));
  };
  add("requests", d.requests);
  add("tokens", d.tokens);
  return h;
}

ApiError RateLimits::refusal(const jobs::RateDecision& d, int64_t requested) const {
  const bool tokens = d.exceeded == "tokens";
  const jobs::BucketView& b = tokens ? d.tokens : d.requests;
  const std::string what = tokens ? "tokens per min (TPM)" : "requests per min (RPM)";
  std::string message =
      d.never_fits
          ? str_cat("Request too large for ", what, ": Limit ", b.limit, ", Requested ", requested,
                    ". Lower max_tokens or the prompt's length.")
          : str_cat("Rate limit reached for ", what, ": Limit ", b.limit, ", Used ", b.limit - b.remaining,
                    ", Requested ", requested, ". Please try again in ", jobs::format_reset(d.retry_after_ms), ".");
  ApiError e = error_with_status(429, std::move(message), "rate_limit_exceeded");
  e.type = tokens ? "tokens" : "requests";
  e.retry_after_seconds = static_cast<int>(std::max<int64_t>(1, (d.retry_after_ms + 999) / 1000));
  return e;
}

std::optional<ApiError> RateLimits::admit(const ExchangePtr& ex) {
  const std::string client = client_id(ex->request(), settings_.api_keys);
  if (!limit_of(client).any()) return std::nullopt;
  ex->record().rate_client = client;
  jobs::RateDecision d = limiter_.admit_request(client);
  ex->set_response_headers(rate_limit_headers(d));
  if (d.allowed) return std::nullopt;
  rejected_requests_->inc();
  return refusal(d, 1);
}

void RateLimits::show(const ExchangePtr& ex) {
  const std::string client = client_id(ex->request(), settings_.api_keys);
  if (!limit_of(client).any()) return;
  ex->set_response_headers(rate_limit_headers(limiter_.peek(client)));
}

std::optional<ApiError> RateLimits::charge(const ExchangePtr& ex, int64_t tokens) {
  const std::string& client = ex->record().rate_client;
  if (client.empty()) return std::nullopt;
  jobs::RateDecision d = limiter_.charge_tokens(client, tokens);
  ex->set_response_headers(rate_limit_headers(d));
  if (d.allowed) {
    ex->record().rate_tokens_charged += tokens;
    return std::nullopt;
  }
  rejected_tokens_->inc();
  return refusal(d, tokens);
}

void RateLimits::on_done(const AccessRecord& r) {
  if (r.rate_client.empty() || r.rate_tokens_charged <= 0) return;
  const int64_t used = std::max<int64_t>(0, r.prompt_tokens) + std::max<int64_t>(0, r.completion_tokens);
  limiter_.refund_tokens(r.rate_client, r.rate_tokens_charged - used);
}

}  // namespace kiln::http
