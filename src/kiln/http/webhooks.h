// Webhooks as Standard Webhooks (and OpenAI) define them: a JSON event POSTed with headers
// webhook-id, webhook-timestamp and webhook-signature ("v1," + base64 HMAC-SHA256 of
// "id.timestamp.body" under the endpoint's whsec_ key). Events sit in a persistent outbox
// (webhook_deliveries, written in the same transaction as the batch status they announce); one
// thread per node claims due deliveries under a lease, sends them with libcurl, and schedules
// retries with exponential back-off for up to 72 h. Deliveries survive restarts and are shared
// by the nodes of one database (each delivery is claimed by one node at a time).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "kiln/core/status.h"
#include "kiln/jobs/batch_store.h"

namespace kiln::http {

struct WebhookEndpoint;

struct WebhookSenderOptions {
  std::string node;
  std::vector<WebhookEndpoint> secrets;  // the configured endpoints (url, whsec_ secret)
  int64_t retry_base_ms = 5000;
  int64_t retry_window_ms = 72LL * 3600000;
  int64_t timeout_ms = 10000;
  int64_t poll_ms = 500;
  std::function<int64_t()> now_ms;
};

// "v1,<base64 HMAC-SHA256(key, id.timestamp.body)>", key = base64-decoded secret after "whsec_"
// (a secret without the prefix is used as raw bytes). Empty when the secret is not valid base64.
std::string webhook_signature(const std::string& secret, const std::string& id, int64_t timestamp_s,
                              const std::string& body);
// When attempt `attempts` (1-based, just failed) is retried: base · 2^(attempts−1), at most 1 h
// apart; nullopt once that would be past created + window (the delivery then fails for good).
std::optional<int64_t> next_retry_ms(int64_t created_ms, int64_t now_ms, int64_t attempts, int64_t base_ms,
                                     int64_t window_ms);
// Checks a --webhook value "URL" and its secret.
Status check_webhook_secret(const std::string& secret);

class WebhookSender {
 public:
  WebhookSender(std::unique_ptr<jobs::BatchStore> store, WebhookSenderOptions options);
  ~WebhookSender();
  WebhookSender(const WebhookSender&) = delete;
  WebhookSender& operator=(const WebhookSender&) = delete;

  // One delivery per configured endpoint of the event `type` about batch `b` (not yet stored).
  std::vector<jobs::WebhookDelivery> events_for(const jobs::BatchRecord& b, const std::string& type, int64_t now_ms) const {
    return events_for(b.id, type, now_ms);
  }
  // The same about any object by id (a batch, a background response).
  std::vector<jobs::WebhookDelivery> events_for(const std::string& subject_id, const std::string& type,
                                                int64_t now_ms) const;
  // Events were queued: look now.
  void wake();

 private:
  void run();
  void deliver(jobs::WebhookDelivery d);

  std::unique_ptr<jobs::BatchStore> store_;
  WebhookSenderOptions options_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool wake_ = false;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace kiln::http
