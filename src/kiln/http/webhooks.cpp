#include "kiln/http/webhooks.h"

#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <chrono>

#include "kiln/core/log.h"
#include "kiln/core/str.h"
#include "kiln/http/batch_service.h"
#include "kiln/http/json_fields.h"

namespace kiln::http {

namespace {

constexpr int64_t kMaxRetryGapMs = 3600000;
constexpr size_t kMaxErrorText = 200;

std::string base64(const unsigned char* data, size_t n) {
  std::string out(4 * ((n + 2) / 3), '\0');
  const int len = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), data, static_cast<int>(n));
  out.resize(static_cast<size_t>(std::max(len, 0)));
  return out;
}

std::optional<std::string> unbase64(const std::string& in) {
  if (in.empty() || in.size() % 4 != 0) return std::nullopt;
  std::string out(in.size() / 4 * 3, '\0');
  const int len = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                  reinterpret_cast<const unsigned char*>(in.data()), static_cast<int>(in.size()));
  if (len < 0) return std::nullopt;
  size_t pad = 0;
  if (in.back() == '=') ++pad;
  if (in.size() >= 2 && in[in.size() - 2] == '=') ++pad;
  out.resize(static_cast<size_t>(len) - pad);
  return out;
}

std::optional<std::string> secret_key(const std::string& secret) {
  if (!starts_with(secret, "whsec_")) return secret;
  return unbase64(secret.substr(6));
}

}  // namespace

Status check_webhook_secret(const std::string& secret) {
  if (secret.empty()) return invalid_argument("a webhook needs a secret (whsec_ followed by base64)");
  if (!secret_key(secret)) return invalid_argument("the webhook secret after 'whsec_' is not valid base64");
  return Status();
}

std::string webhook_signature(const std::string& secret, const std::string& id, int64_t timestamp_s,
                              const std::string& body) {
  auto key = secret_key(secret);
  if (!key) return "";
  const std::string content = str_cat(id, ".", timestamp_s, ".", body);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key->data(), static_cast<int>(key->size()), reinterpret_cast<const unsigned char*>(content.data()),
       content.size(), mac, &len);
  return "v1," + base64(mac, len);
}

std::optional<int64_t> next_retry_ms(int64_t created_ms, int64_t now_ms, int64_t attempts, int64_t base_ms,
                                     int64_t window_ms) {
  int64_t gap = base_ms;
  for (int64_t i = 1; i < attempts && gap < kMaxRetryGapMs; ++i) gap *= 2;
  gap = std::min(gap, kMaxRetryGapMs);
  const int64_t at = now_ms + gap;
  if (at > created_ms + window_ms) return std::nullopt;
  return at;
}

WebhookSender::WebhookSender(std::unique_ptr<jobs::BatchStore> store, WebhookSenderOptions options)
    : store_(std::move(store)), options_(std::move(options)) {
  if (!options_.secrets.empty()) thread_ = std::thread([this] { run(); });
}

WebhookSender::~WebhookSender() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void WebhookSender::wake() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    wake_ = true;
  }
  cv_.notify_all();
}

std::vector<jobs::WebhookDelivery> WebhookSender::events_for(const std::string& subject_id, const std::string& type,
                                                             int64_t now_ms) const {
  std::vector<jobs::WebhookDelivery> out;
  for (const auto& e : options_.secrets) {
    jobs::WebhookDelivery d;
    d.id = new_object_id("evt_");
    d.endpoint = e.url;
    d.event_type = type;
    d.subject_id = subject_id;
    d.created_ms = now_ms;
    // OpenAI's event shape: the object is fetched by id, not embedded.
    d.payload = Json{{"object", "event"}, {"id", d.id}, {"type", type}, {"created_at", now_ms / 1000},
                     {"data", {{"id", subject_id}}}}
                    .dump();
    out.push_back(std::move(d));
  }
  return out;
}

void WebhookSender::run() {
  std::unique_lock<std::mutex> lk(mu_);
  while (!stop_) {
    lk.unlock();
    const int64_t now = options_.now_ms();
    auto due = store_->claim_deliveries(options_.node, 16, now, now + options_.timeout_ms * 3);
    if (!due.is_ok()) log_error("webhooks: cannot read the outbox: ", due.status().message());
    else {
      for (auto& d : *due) deliver(std::move(d));
    }
    lk.lock();
    if (stop_) break;
    if (due.is_ok() && due->size() == 16) continue;
    if (!wake_) cv_.wait_for(lk, std::chrono::milliseconds(options_.poll_ms));
    wake_ = false;
  }
}

void WebhookSender::deliver(jobs::WebhookDelivery d) {
  const WebhookEndpoint* ep = nullptr;
  for (const auto& e : options_.secrets) {
    if (e.url == d.endpoint) ep = &e;
  }
  const int64_t now = options_.now_ms();
  d.attempts += 1;
  d.last_attempt_ms = now;
  d.last_status = 0;
  d.last_error.clear();
  if (ep == nullptr) {
    d.last_error = "the endpoint is no longer configured on this node";
  } else {
    const int64_t ts = now / 1000;
    std::string sig = webhook_signature(ep->secret, d.id, ts, d.payload);
    CURL* curl = curl_easy_init();
    curl_slist* headers = nullptr;
    for (const std::string& h : {std::string("content-type: application/json"), "webhook-id: " + d.id,
                                 str_cat("webhook-timestamp: ", ts), "webhook-signature: " + sig,
                                 std::string("user-agent: kiln-webhooks")}) {
      headers = curl_slist_append(headers, h.c_str());
    }
    curl_easy_setopt(curl, CURLOPT_URL, d.endpoint.c_str());
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, d.payload.c_str());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, static_cast<long>(d.payload.size()));
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(options_.timeout_ms));
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    // The answer's body is not kept.
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, +[](char*, size_t size, size_t n, void*) { return size * n; });
    const CURLcode rc = curl_easy_perform(curl);
    long code = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
    d.last_status = code;
    if (rc != CURLE_OK) d.last_error = std::string(curl_easy_strerror(rc)).substr(0, kMaxErrorText);
    else if (code < 200 || code >= 300) d.last_error = str_cat("the endpoint answered ", code);
  }
  if (d.last_error.empty()) {
    d.status = "delivered";
  } else if (auto next = next_retry_ms(d.created_ms, now, d.attempts, options_.retry_base_ms, options_.retry_window_ms)) {
    d.status = "pending";
    d.next_attempt_ms = *next;
  } else {
    d.status = "failed";
    log_warn("webhooks: ", d.event_type, " ", d.id, " to ", d.endpoint, " given up after ", d.attempts, " attempts");
  }
  if (auto s = store_->record_attempt(d); !s.is_ok()) log_error("webhooks: cannot record an attempt: ", s.message());
}

}  // namespace kiln::http
