// kiln's HTTP application: middleware (request id, CORS, API keys, content type), the routes of
// DESIGN §6, the access log and HTTP metrics. The Server calls handle() for every request and
// on_done() once each has been answered.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <span>
#include <string>

#include "kiln/grammar/spec.h"
#include "kiln/http/auth.h"
#include "kiln/http/cors.h"
#include "kiln/http/exchange.h"
#include "kiln/http/request_metrics.h"
#include "kiln/http/router.h"
#include "kiln/http/static_site.h"
#include "kiln/metrics/metrics.h"
#include "kiln/pool/model_pool.h"

namespace kiln::http {

class Server;
class JobTracker;
class RateLimits;
class BatchService;
class PullService;

// --default-max-tokens' default.
inline constexpr int64_t kDefaultMaxTokens = 4096;

struct AppOptions {
  ApiKeys api_keys;
  // --admin-key: when set, /v1/admin/* takes these keys instead of the API keys.
  ApiKeys admin_keys;
  Cors cors;
  std::string version = "0.0.0";
  // While a streamed request has produced nothing yet (it waits in the queue), an SSE comment
  // goes out this often so that proxies and clients do not time the stream out.
  std::chrono::milliseconds sse_keepalive{10000};
  bool access_log = true;
  // Most tokens a chat completion without max_tokens generates (0: the rest of the context);
  // always capped by what the context leaves (docs/generation-defaults.md).
  int64_t default_max_tokens = kDefaultMaxTokens;
  // The web UI's files (docs/ui.md), served at / and /assets/ without a key; empty: no UI.
  std::span<const StaticAsset> ui;
};

// What handlers share.
struct AppContext {
  pool::ModelPool* pool = nullptr;
  metrics::Registry* registry = nullptr;
  const AppOptions* options = nullptr;
  const Server* server = nullptr;  // for /health while draining; may be null in tests
  JobTracker* jobs = nullptr;      // null: jobs are not recorded (--database off, tests)
  RateLimits* limits = nullptr;    // null: no rate limits configured
  BatchService* batches = nullptr;  // null: no Files and Batch APIs (--database off)
  std::string system_fingerprint;
  // Compiled response formats, shared by every model and request (docs/structured-outputs.md).
  grammar::GrammarCache* grammars = nullptr;
  PullService* pulls = nullptr;  // null: no POST /v1/admin/models/pull (tests)
};

class App {
 public:
  App(pool::ModelPool& pool, metrics::Registry& registry, AppOptions options);
  App(const App&) = delete;
  App& operator=(const App&) = delete;

  void set_server(const Server* server);
  // Records jobs and serves /v1/jobs through `jobs` (which outlives the app's requests).
  void set_jobs(JobTracker* jobs) { ctx_.jobs = jobs; }
  // Enforces rate limits through `limits` (which outlives the app's requests).
  void set_rate_limits(RateLimits* limits) { ctx_.limits = limits; }
  // Serves the Files and Batch APIs through `batches` (which outlives the app's requests).
  void set_batches(BatchService* batches) { ctx_.batches = batches; }
  // Runs POST /v1/admin/models/pull through `pulls` (which outlives the app's requests).
  void set_pulls(PullService* pulls) { ctx_.pulls = pulls; }
  void handle(const ExchangePtr& ex);
  // Whether a request's body may be streamed to disk (ServerOptions::upload_route): a file
  // upload from a client whose key is good, so that nobody else can make the server write
  // 200 MB; any other request is read in memory under the body limit and answered as usual.
  bool takes_upload(const HttpRequest& head) const;
  // A request made inside the server (a batch line): routed to the same handler as a client's,
  // past the middleware (it was authorized when its batch was created).
  void handle_internal(const ExchangePtr& ex);
  void on_done(const AccessRecord& record);

 private:
  AppOptions options_;
  grammar::GrammarCache grammars_;
  AppContext ctx_;
  Router router_;
  RequestMetrics metrics_;
};

}  // namespace kiln::http
