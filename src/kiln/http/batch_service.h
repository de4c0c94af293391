// The Files and Batch APIs' engine room (docs/batches.md): file contents on disk, records in the
// job database, and a runner that validates batches, claims their lines under leases, runs each
// line in-process through the same route handler an HTTP client reaches (at a lower scheduling
// priority), commits each result once, and finalizes batches into output and error files; plus
// the webhook outbox's deliverer (webhooks.h).
//
// Threads: the API queue (handlers' database work and upload processing, one connection), the
// runner (one connection; line exchanges run on its own io_context), the webhook deliverer (one
// connection). Nothing here runs on an HTTP I/O thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "kiln/core/status.h"
#include "kiln/jobs/batch_store.h"
#include "kiln/core/work_queue.h"

namespace kiln::pool {
class ModelPool;
}
namespace kiln::metrics {
class Registry;
}

namespace kiln::http {

class App;
class WebhookSender;

struct WebhookEndpoint {
  std::string url;
  std::string secret;  // "whsec_" + base64 of the key
};

struct BatchOptions {
  std::string database;             // --database (not "off")
  std::filesystem::path data_dir;   // where SQLite's default file lives
  std::filesystem::path files_dir;  // --files-dir: file contents (shared by every node)
  std::string node;                 // --node-name
  int concurrency = 8;              // --batch-concurrency: lines in flight on this node
  int64_t lease_ms = 60000;         // --batch-lease: a line claimed by a node that died runs again after this
  // --batch-window: a batch's expires_at is its created_at plus this. Clients may only ask for
  // completion_window "24h" (OpenAI's one value); the operator's window is what applies.
  int64_t window_ms = 24LL * 3600000;
  // --batch-load-grace: a line of a model this node has not loaded is claimed only once it has
  // waited this long, so that a node with the model loaded takes it first (docs/batches.md).
  int64_t load_grace_ms = 5000;
  // --batch-retention: ended batches (with their lines) and finished webhook deliveries are
  // deleted this long after they ended (docs/batches.md, "Retention"); 0: kept forever.
  int64_t retention_ms = 30LL * 24 * 3600000;
  // Where the batch counters go (kiln_batch_lines_total, the retention's); null: not counted.
  metrics::Registry* registry = nullptr;
  int64_t poll_ms = 250;            // how often the runner looks for work when idle
  int32_t priority = 1;             // batch lines' scheduling priority (clients: 0)
  int64_t max_file_lines = 50000;
  size_t max_line_bytes = 32u << 20;  // a line's size (the HTTP body limit)
  std::vector<WebhookEndpoint> webhooks;
  int64_t webhook_retry_base_ms = 5000;              // first retry after this, doubling
  int64_t webhook_retry_window_ms = 72LL * 3600000;  // retried for this long
  int64_t webhook_timeout_ms = 10000;
  // The clock every timestamp and lease uses (Unix ms); tests inject one.
  std::function<int64_t()> now_ms;
};

// A line's answer, as the runner commits it.
struct LineOutcome {
  std::string batch_id, token, model;
  int64_t line = 0;
  bool retry = false;  // the node could not run it now (overloaded, shutting down): run it later
  bool is_error = false;
  std::string result;  // the output/error file line; a background response's final object
  // A background response (docs/responses-api.md) rather than a batch line: its id and final
  // status (completed, incomplete, failed).
  std::string response_id, response_status;
};

class BatchService {
 public:
  static Result<std::unique_ptr<BatchService>> start(BatchOptions options, App& app, pool::ModelPool& pool);
  ~BatchService();
  BatchService(const BatchService&) = delete;
  BatchService& operator=(const BatchService&) = delete;

  const BatchOptions& options() const { return options_; }
  int64_t now_ms() const { return options_.now_ms(); }
  // Runs `fn` on the API thread with its connection; false when too many wait (503).
  bool submit(std::function<void(jobs::BatchStore&)> fn) { return api_->submit(std::move(fn)); }
  // The webhook outbox's sender: events to queue with a status change, and its wake-up.
  WebhookSender& webhooks() { return *webhooks_; }
  // A batch was created or cancelled: look for work now.
  void wake();
  std::filesystem::path file_path(const std::string& file_id) const { return options_.files_dir / file_id; }

 private:
  BatchService(BatchOptions options, App& app, pool::ModelPool& pool);
  void run();
  // `maintain`: also look for batches to validate and to end (on a wake-up from the API, and at
  // most every poll_ms otherwise, so that a stream of finished lines costs no extra queries).
  void step(int64_t now, bool maintain);
  void maintain_batches(int64_t now);
  void validate(const jobs::BatchRecord& b);
  // Deletes files whose expires_at has passed (records, then contents).
  void prune_files(int64_t now);
  // Deletes what ended more than retention_ms ago: one bounded pass a minute (or a retention
  // period, if shorter), and one every maintenance pass while a backlog remains.
  void prune_ended(int64_t now);
  // Writes the output and error files and ends the batch as `status` (completed, expired,
  // cancelled) if it still has status `from`.
  void finalize(const jobs::BatchRecord& b, const std::string& from, const std::string& status);
  // A claimed line with what running it needs from its batch.
  struct ReadyLine {
    jobs::ClaimedLine line;
    std::string endpoint, input_file, model;
  };
  void dispatch(const ReadyLine& l);
  // Runs a claimed background response through POST /v1/responses, as a client's request.
  void dispatch_response(const jobs::ResponseRecord& r);
  // Commits a finished background response (in the runner's transaction).
  Status commit_response(const LineOutcome& o);
  // A line ended: its outcome goes to the runner, and a line claimed ahead (if any) takes its
  // slot at once, on the caller's thread, so the engine never waits for the runner's database
  // work to refill a slot.
  void line_done(LineOutcome outcome);
  // Hands the lines claimed ahead back to the queue (a batch was cancelled or created).
  void release_ready();
  std::vector<std::string> serving_models();
  // Claims up to `limit` lines: of the models this node has loaded first, then of the models it
  // would have to load, once they have waited load_grace_ms.
  Result<std::vector<jobs::ClaimedLine>> claim_lines(int limit, int64_t now, int64_t until);

  BatchOptions options_;
  App& app_;
  pool::ModelPool& pool_;
  std::unique_ptr<WorkQueue<jobs::BatchStore>> api_;
  std::unique_ptr<jobs::BatchStore> db_;  // the runner's
  std::unique_ptr<WebhookSender> webhooks_;
  struct Io;
  std::unique_ptr<Io> io_;  // the line exchanges' io_context and its thread

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<LineOutcome> done_;                 // guarded by mu_
  std::map<std::string, std::string> in_flight_;  // token -> batch id; guarded by mu_
  // Lines claimed ahead of free slots (up to `concurrency`), in claim order; guarded by mu_.
  std::deque<ReadyLine> ready_;
  bool wake_ = false;                             // guarded by mu_
  bool stop_ = false;                             // guarded by mu_
  int64_t last_renew_ms_ = 0;
  int64_t last_maintain_ms_ = 0;
  int64_t last_retention_ms_ = 0;
  bool retention_backlog_ = false;  // the last retention pass hit its limit
  std::thread thread_;
};

// Ids as OpenAI shapes them: "file-" / "batch_" / "batch_req_" / "evt_" + 24 hex digits.
std::string new_object_id(std::string_view prefix);

}  // namespace kiln::http
