// Files, batches, batch lines and the webhook outbox in the job database (schema version 3,
// docs/batches.md). Plain records: JSON (a batch's metadata and errors, a line's result) is
// opaque text here, built and read by the HTTP layer. Like JobStore, one BatchStore is one
// connection and is not thread-safe.
//
// Durability rests on three rules: a line is claimed with a lease (node, random token, deadline);
// its result is committed only while that claim still holds (token and status match), so a line
// has exactly one committed result; and a batch's final status, its output files and its webhook
// events are written in one transaction.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "kiln/core/status.h"
#include "kiln/jobs/sql_conn.h"

namespace kiln::jobs {

struct FileRecord {
  std::string id, purpose, filename, client;
  int64_t bytes = 0, lines = 0, created_ms = 0;
  int64_t expires_ms = 0;  // 0: kept until deleted
};

struct BatchRecord {
  std::string id, endpoint, input_file_id, completion_window, status, model, client;
  std::string metadata;  // JSON object text, or empty (null)
  std::string errors;    // JSON array text of {code, message, param, line}, or empty
  std::string output_file_id, error_file_id;
  int64_t created_ms = 0, in_progress_ms = 0, finalizing_ms = 0, completed_ms = 0, failed_ms = 0, expired_ms = 0,
          cancelling_ms = 0, cancelled_ms = 0, expires_ms = 0;
  int64_t total = 0, completed = 0, failed = 0;
  int64_t output_expires_s = 0;  // output_expires_after.seconds for the output and error files (0: never)
};

// A line as validation stores it: where its request body sits in the input file.
struct BatchLine {
  int64_t line = 0;  // 1-based, as errors.data reports it
  std::string custom_id;
  int64_t body_offset = 0, body_length = 0;
};

struct ClaimedLine {
  std::string batch_id, custom_id, token;
  int64_t line = 0, body_offset = 0, body_length = 0;
};

struct LineCounts {
  int64_t total = 0, completed = 0, failed = 0;
  int64_t pending = 0;  // not yet run, or run by a claim whose lease has expired
  int64_t running = 0;  // claimed under a live lease
};

struct LineResultRow {
  int64_t line = 0;
  std::string custom_id;
  bool done = false, is_error = false;
  std::string result;  // the output/error file line (JSON text), when done
};

struct WebhookDelivery {
  std::string id, endpoint, event_type, subject_id, payload, status, last_error;
  int64_t created_ms = 0, attempts = 0, next_attempt_ms = 0, last_attempt_ms = 0, last_status = 0;
};

// A stored response (schema version 4, docs/responses-api.md). `request` is the body a
// background response runs (its input already holding the earlier turns), `input_items` the
// response's input items (JSON array text), `response` the response object as it stands (JSON).
struct ResponseRecord {
  std::string id, client, model, status;  // status: queued | in_progress | completed | incomplete | failed | cancelled
  bool background = false;
  int64_t created_ms = 0, updated_ms = 0;
  std::string request, input_items, response;
  std::string token;  // the claim's, while a node runs it
};

// What one retention pass deleted (BatchStore::prune_ended).
struct PruneResult {
  std::vector<std::string> batches;  // ids of the batches deleted
  int64_t lines = 0;                 // batch lines deleted
  int64_t deliveries = 0;            // webhook deliveries deleted
};

struct Page {
  std::string after;  // the last id of the previous page ("" : from the newest)
  int limit = 20;
};

// 32 random hex digits: a claim's token.
std::string random_token();

class BatchStore {
 public:
  explicit BatchStore(std::unique_ptr<SqlConn> conn) : c_(std::move(conn)) {}
  bool postgres() const { return c_->postgres(); }

  // Files.
  Status insert_file(const FileRecord& f);
  Result<std::optional<FileRecord>> get_file(const std::string& id);
  // Newest first; NotFound when page.after names no file. `purpose` "" : any.
  Result<std::pair<std::vector<FileRecord>, bool>> list_files(const Page& page, const std::string& purpose);
  Result<bool> delete_file(const std::string& id);
  // Deletes up to `limit` file records whose expires_ms has passed and returns their ids (the
  // caller then removes their contents). An input file stays while a batch reading it is still
  // running, so that expiry never breaks a batch in flight. Each record is deleted by one caller
  // only, so several nodes pruning at once each remove different contents.
  Result<std::vector<std::string>> prune_expired_files(int64_t now_ms, int limit);

  // Batches.
  Status insert_batch(const BatchRecord& b);
  Result<std::optional<BatchRecord>> get_batch(const std::string& id);
  Result<std::pair<std::vector<BatchRecord>, bool>> list_batches(const Page& page);
  Result<LineCounts> line_counts(const std::string& batch_id, int64_t now_ms);
  // validating/in_progress -> cancelling (finalizing and final batches are left as they are);
  // returns the batch as it now stands.
  Result<std::optional<BatchRecord>> request_cancel(const std::string& id, int64_t now_ms);

  // Takes the lease on one batch in `status` whose lease is free or expired and that matches
  // `extra` (an SQL condition on the batches row, may be empty), oldest first.
  Result<std::optional<BatchRecord>> lease_batch(const std::string& status, const std::string& extra,
                                                 const std::string& node, int64_t now_ms, int64_t until_ms);
  // lease_batch for an in_progress batch whose window has run out (expires_ms <= now_ms).
  Result<std::optional<BatchRecord>> lease_expired_batch(const std::string& node, int64_t now_ms, int64_t until_ms);
  // Releases a batch lease early (validation or finalization was cut short by an error).
  Status release_batch(const std::string& id, const std::string& node);
  // Stores the validated lines and moves the batch to in_progress, in one transaction (any lines
  // a killed validation left are replaced).
  Status finish_validation(const std::string& batch_id, const std::string& model, const std::vector<BatchLine>& lines,
                           int64_t now_ms);
  // in_progress -> finalizing.
  Status mark_finalizing(const std::string& batch_id, int64_t now_ms);

  // Claims up to `limit` runnable lines of in_progress batches whose model is in `models`.
  Result<std::vector<ClaimedLine>> claim_lines(const std::string& node, const std::vector<std::string>& models,
                                               int limit, int64_t now_ms, int64_t until_ms);
  // Like claim_lines, but only lines that have waited to run since `waiting_since_ms` or earlier:
  // since their batch went in_progress (a line never run, or handed back), or since their lease
  // expired. A node claims lines of models it has not loaded this way (docs/batches.md, "Which
  // node runs a line"), so that a node with the model loaded gets the first chance.
  Result<std::vector<ClaimedLine>> claim_waiting_lines(const std::string& node, const std::vector<std::string>& models,
                                                       int limit, int64_t now_ms, int64_t until_ms,
                                                       int64_t waiting_since_ms);
  // Extends the leases of these claims (by token).
  Status renew_leases(const std::vector<std::string>& tokens, int64_t until_ms);
  // Commits a line's result if the claim still holds; false when it was lost (the line will be,
  // or was, run again under another claim, whose result counts).
  Result<bool> commit_line(const std::string& batch_id, int64_t line, const std::string& token, bool is_error,
                           const std::string& result);
  // Hands a claim back unrun (the node could not run it now): the line is pending again.
  Status release_line(const std::string& batch_id, int64_t line, const std::string& token);
  // At start: the lines a previous process of `node` held are pending again at once (no need to
  // wait for their leases).
  Result<int64_t> release_node_lines(const std::string& node);
  // Lines after `after_line`, in line order.
  Result<std::vector<LineResultRow>> line_results(const std::string& batch_id, int64_t after_line, int limit);

  // Ends a batch: inserts its output/error file records, sets its final status, counts and
  // timestamps (and errors), and queues its webhook deliveries, in one transaction. `status` is
  // completed, expired, cancelled or failed, with its *_ms set (when the batch ended, which the
  // retention counts from); `from` the status it must still have (else nothing changes: false).
  Result<bool> complete_batch(const BatchRecord& final_state, const std::string& from,
                              const std::vector<FileRecord>& files, const std::vector<WebhookDelivery>& events);

  // Retention (docs/batches.md, "Retention"): deletes up to `limit` lines of batches that ended
  // (completed, failed, expired, cancelled) at or before `ended_before_ms`, then up to `limit` of
  // those batches whose lines are all gone, and up to `limit` webhook deliveries delivered or
  // given up at or before it. Never a batch that has not ended nor a delivery still pending.
  // Lines go first so that a batch of 50,000 lines is worked off over several bounded passes and
  // its row, which GET /v1/batches/{id} reads, goes last. Each row is deleted by one caller only,
  // so several nodes pruning at once divide the work.
  Result<PruneResult> prune_ended(int64_t ended_before_ms, int limit);

  // Webhook outbox.
  Result<std::vector<WebhookDelivery>> claim_deliveries(const std::string& node, int limit, int64_t now_ms,
                                                        int64_t until_ms);
  // After an attempt: `status` delivered | pending (retry at next_attempt_ms) | failed.
  Status record_attempt(const WebhookDelivery& d);
  // Newest first; `subject_id` "" : all.
  Result<std::pair<std::vector<WebhookDelivery>, bool>> list_deliveries(const Page& page, const std::string& subject_id);

  // Stored responses (response_store.cpp).
  Status insert_response(const ResponseRecord& r);
  Result<std::optional<ResponseRecord>> get_response(const std::string& id);
  Result<bool> delete_response(const std::string& id);
  // Claims up to `limit` background responses of `models` that are queued, or in_progress under
  // an expired lease, oldest first; each gets its own token.
  Result<std::vector<ResponseRecord>> claim_responses(const std::string& node, const std::vector<std::string>& models,
                                                      int limit, int64_t now_ms, int64_t until_ms);
  Status renew_response_leases(const std::vector<std::string>& tokens, int64_t until_ms);
  // Ends a response: its final status and object, and its webhook events; only while it is still
  // open (queued or in_progress) and, when `token` is not empty, still claimed by that token.
  // False when it was not (cancelled, deleted, or taken over). Not a transaction of its own: the
  // caller runs it inside in_transaction (the runner's commit holds several).
  Result<bool> finish_response(const std::string& id, const std::string& token, const std::string& status,
                               const std::string& response, int64_t now_ms, const std::vector<WebhookDelivery>& events);
  // Hands a claim back unrun: queued again.
  Status release_response(const std::string& id, const std::string& token);
  // At start: the responses a previous process of `node` was running are queued again.
  Result<int64_t> release_node_responses(const std::string& node);

  // Runs `body` in one transaction (committed when it returns OK, else rolled back).
  Status in_transaction(const std::function<Status()>& body);

 private:
  Status insert_deliveries(const std::vector<WebhookDelivery>& events);
  // claim_lines' statement; `waiting_since_ms` < 0: no waiting condition.
  Result<std::vector<ClaimedLine>> claim(const std::string& node, const std::vector<std::string>& models, int limit,
                                         int64_t now_ms, int64_t until_ms, int64_t waiting_since_ms);

  std::unique_ptr<SqlConn> c_;
};

}  // namespace kiln::jobs
