#include "serve_batches.h"

#include <algorithm>

#include "kiln/core/file.h"
#include "kiln/core/log.h"
#include "kiln/core/str.h"
#include "kiln/http/webhooks.h"
#include "kiln/pool/registry.h"

namespace kiln::app {

Result<std::unique_ptr<http::BatchService>> start_batches(const BatchSettings& s, const std::string& database,
                                                          const std::string& node, http::App& app,
                                                          pool::ModelPool& pool, metrics::Registry& registry) {
  if (database == "off") {
    if (!s.webhooks.empty()) return invalid_argument("--webhook needs the job store (not --database off)");
    return std::unique_ptr<http::BatchService>();
  }
  http::BatchOptions o;
  o.database = database;
  o.data_dir = user_data_dir();
  o.files_dir = s.files_dir.empty() ? o.data_dir / "files" : std::filesystem::path(s.files_dir);
  o.node = node;
  // 0: an API-only node, which accepts batches and background responses and leaves running them
  // to the other nodes of its database.
  if (s.concurrency < 0) return invalid_argument("--batch-concurrency must be 0 or more");
  o.concurrency = s.concurrency;
  auto lease = pool::parse_duration(s.lease);
  if (!lease.is_ok() || lease->count() < 1000) return invalid_argument("--batch-lease must be a duration of 1s or more");
  o.lease_ms = lease->count();
  auto window = pool::parse_duration(s.window);
  if (!window.is_ok() || window->count() < 1000) return invalid_argument("--batch-window must be a duration of 1s or more");
  o.window_ms = window->count();
  auto grace = pool::parse_duration(s.load_grace);
  if (!grace.is_ok() || grace->count() < 0) return invalid_argument("--batch-load-grace must be a duration of 0s or more");
  o.load_grace_ms = grace->count();
  auto retention = pool::parse_duration(s.retention);
  if (!retention.is_ok()) return invalid_argument("--batch-retention must be a duration (0 or -1: keep forever)");
  o.retention_ms = std::max<int64_t>(retention->count(), 0);
  o.registry = &registry;
  auto base = pool::parse_duration(s.webhook_retry_base);
  if (!base.is_ok() || base->count() < 1) return invalid_argument("--webhook-retry-base must be a positive duration");
  o.webhook_retry_base_ms = base->count();
  if (!s.webhooks.empty()) KILN_RETURN_IF_ERROR(http::check_webhook_secret(s.webhook_secret).with_context("--webhook-secret"));
  for (const auto& url : s.webhooks) {
    if (!starts_with(url, "http://") && !starts_with(url, "https://")) {
      return invalid_argument(str_cat("--webhook ", url, ": not an http:// or https:// URL"));
    }
    o.webhooks.push_back(http::WebhookEndpoint{url, s.webhook_secret});
  }
  auto svc = http::BatchService::start(std::move(o), app, pool);
  if (!svc.is_ok()) return svc.status().with_context("the Files and Batch APIs");
  log_info("batches: files in ", (*svc)->options().files_dir.string(), ", ", s.concurrency, " lines at a time, lease ",
           s.lease, ", retention ",
           retention->count() <= 0 ? std::string("forever") : pool::format_duration(*retention),
           s.webhooks.empty() ? "" : str_cat(", ", s.webhooks.size(), " webhook endpoint(s)"));
  return svc;
}

}  // namespace kiln::app
