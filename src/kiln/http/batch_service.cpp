#include "kiln/http/batch_service.h"

#include <algorithm>
#include <chrono>
#include <fstream>
#include <optional>
#include <random>

#include "kiln/core/log.h"
#include "kiln/core/str.h"
#include "kiln/http/app.h"
#include "kiln/http/asio.h"
#include "kiln/http/batch_json.h"
#include "kiln/http/webhooks.h"
#include "kiln/metrics/metrics.h"
#include "kiln/pool/model_pool.h"

namespace kiln::http {

namespace net = boost::asio;

namespace {

constexpr int kPage = 1000;
// Expired files deleted per maintenance pass: a backlog is worked off a bounded step at a time.
constexpr int kPruneBatch = 100;
// Rows of each table (lines, batches, deliveries) a retention pass deletes at most, and how often
// a pass runs when the last one found no backlog.
constexpr int kRetentionBatch = 1000;
constexpr int64_t kRetentionEveryMs = 60000;

// How a line's HTTP answer is filed: transient refusals (overload, shutdown) run again later.
bool retryable(int status) { return status == 429 || status == 503 || status == kClientClosedStatus; }

}  // namespace

std::string new_object_id(std::string_view prefix) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  static const char* kHex = "0123456789abcdef";
  std::string id(prefix);
  for (int i = 0; i < 2; ++i) {
    uint64_t v = rng();
    for (int j = 0; j < 12; ++j, v >>= 4) id += kHex[v & 15];
  }
  return id;
}

struct BatchService::Io {
  net::io_context ioc;
  net::executor_work_guard<net::io_context::executor_type> guard{ioc.get_executor()};
  std::thread thread{[this] { ioc.run(); }};
  ~Io() {
    guard.reset();
    ioc.stop();
    thread.join();
  }
};

// The answer of one batch line, collected in memory (a line's body is bounded by the HTTP body
// limit and its answer by max_tokens) and handed to the runner when the exchange ends.
class LineSink final : public ExchangeSink, public std::enable_shared_from_this<LineSink> {
 public:
  LineSink(net::io_context& ioc, std::function<void(const AccessRecord&, int, std::string)> done)
      : strand_(net::make_strand(ioc)), done_(std::move(done)) {}
  void post(std::function<void()> fn) override { net::post(strand_, std::move(fn)); }
  void post_after(std::chrono::milliseconds delay, std::function<void()> fn) override {
    auto timer = std::make_shared<net::steady_timer>(strand_, delay);
    timer->async_wait([timer, fn = std::move(fn)](boost::system::error_code ec) {
      if (!ec) fn();
    });
  }
  void send_response(const HttpResponse& r, const Headers&, const std::string&) override {
    status_ = r.status;
    body_ = r.body;
  }
  void send_stream_head(const Headers&, const std::string&, std::string_view) override { status_ = 200; }
  void send_stream_bytes(std::string bytes) override { body_ += bytes; }
  void send_stream_end() override {}
  void exchange_finished(const AccessRecord& record) override { done_(record, status_, std::move(body_)); }
  size_t pending_bytes() const override { return 0; }

 private:
  net::strand<net::io_context::executor_type> strand_;
  std::function<void(const AccessRecord&, int, std::string)> done_;
  int status_ = 500;
  std::string body_;
};

Result<std::unique_ptr<BatchService>> BatchService::start(BatchOptions options, App& app, pool::ModelPool& pool) {
  if (!options.now_ms) {
    options.now_ms = [] {
      return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count();
    };
  }
  std::error_code ec;
  std::filesystem::create_directories(options.files_dir, ec);
  if (ec) return unavailable(str_cat("cannot create the files directory ", options.files_dir.string(), ": ", ec.message()));
  std::unique_ptr<BatchService> s(new BatchService(std::move(options), app, pool));
  for (auto* slot : {&s->db_}) {
    auto conn = jobs::open_sql(s->options_.database, s->options_.data_dir);
    if (!conn.is_ok()) return conn.status();
    *slot = std::make_unique<jobs::BatchStore>(std::move(conn).value());
  }
  auto api = jobs::open_sql(s->options_.database, s->options_.data_dir);
  if (!api.is_ok()) return api.status();
  s->api_ = std::make_unique<WorkQueue<jobs::BatchStore>>(std::make_unique<jobs::BatchStore>(std::move(api).value()));
  // The lines a previous process of this node was running cannot finish: they run again now.
  auto released = s->db_->release_node_lines(s->options_.node);
  if (!released.is_ok()) return released.status();
  if (*released > 0) log_warn("batches: ", *released, " line(s) left running by the previous run of node '",
                              s->options_.node, "' will run again");
  auto requeued = s->db_->release_node_responses(s->options_.node);
  if (!requeued.is_ok()) return requeued.status();
  if (*requeued > 0) log_warn("responses: ", *requeued, " background response(s) left running by the previous run of node '",
                              s->options_.node, "' will run again");
  auto hooks = jobs::open_sql(s->options_.database, s->options_.data_dir);
  if (!hooks.is_ok()) return hooks.status();
  WebhookSenderOptions wo;
  wo.node = s->options_.node;
  wo.retry_base_ms = s->options_.webhook_retry_base_ms;
  wo.retry_window_ms = s->options_.webhook_retry_window_ms;
  wo.timeout_ms = s->options_.webhook_timeout_ms;
  wo.secrets = s->options_.webhooks;
  wo.now_ms = s->options_.now_ms;
  s->webhooks_ = std::make_unique<WebhookSender>(std::make_unique<jobs::BatchStore>(std::move(hooks).value()), wo);
  s->io_ = std::make_unique<Io>();
  s->thread_ = std::thread([p = s.get()] { p->run(); });
  return s;
}

BatchService::BatchService(BatchOptions options, App& app, pool::ModelPool& pool)
    : options_(std::move(options)), app_(app), pool_(pool) {}

BatchService::~BatchService() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  // Lines still running stay claimed: the next start of this node (or another node, once their
  // leases expire) runs them again.
  io_.reset();
  webhooks_.reset();
  api_.reset();
}

void BatchService::wake() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    wake_ = true;
  }
  cv_.notify_all();
}

void BatchService::line_done(LineOutcome outcome) {
  std::optional<ReadyLine> next;
  {
    std::lock_guard<std::mutex> lk(mu_);
    done_.push_back(std::move(outcome));
    if (!stop_ && !ready_.empty()) {
      next = std::move(ready_.front());
      ready_.pop_front();
    }
  }
  cv_.notify_all();
  if (next) dispatch(*next);
}

void BatchService::release_ready() {
  std::deque<ReadyLine> ready;
  {
    std::lock_guard<std::mutex> lk(mu_);
    ready.swap(ready_);
  }
  for (const ReadyLine& r : ready) {
    if (auto s = db_->release_line(r.line.batch_id, r.line.line, r.line.token); !s.is_ok()) {
      log_error("batches: cannot hand back ", r.line.batch_id, " line ", r.line.line, ": ", s.message());
    }
  }
}

std::vector<std::string> BatchService::serving_models() {
  std::vector<std::string> ids;
  for (const auto& m : pool_.list()) ids.push_back(m.id);
  return ids;
}

Result<std::vector<jobs::ClaimedLine>> BatchService::claim_lines(int limit, int64_t now, int64_t until) {
  std::vector<std::string> loaded, unloaded;
  for (const auto& m : pool_.list()) (m.loaded ? loaded : unloaded).push_back(m.id);
  KILN_ASSIGN_OR_RETURN(auto claimed, db_->claim_lines(options_.node, loaded, limit, now, until));
  const int left = limit - static_cast<int>(claimed.size());
  if (left <= 0 || unloaded.empty()) return claimed;
  KILN_ASSIGN_OR_RETURN(auto waiting, db_->claim_waiting_lines(options_.node, unloaded, left, now, until,
                                                               now - options_.load_grace_ms));
  claimed.insert(claimed.end(), waiting.begin(), waiting.end());
  return claimed;
}

void BatchService::run() {
  std::unique_lock<std::mutex> lk(mu_);
  bool woken = true;
  while (!stop_) {
    lk.unlock();
    const int64_t now = now_ms();
    const bool maintain = woken || now - last_maintain_ms_ >= options_.poll_ms;
    if (maintain) last_maintain_ms_ = now;
    // A batch was cancelled (or created): lines claimed ahead go back, so that a cancelled
    // batch's lines do not start and a new batch's lines are claimed in order.
    if (woken) release_ready();
    step(now, maintain);
    lk.lock();
    if (stop_) break;
    if (!wake_ && done_.empty()) cv_.wait_for(lk, std::chrono::milliseconds(options_.poll_ms));
    woken = wake_;
    wake_ = false;
  }
}

void BatchService::step(int64_t now, bool maintain) {
  const std::string& node = options_.node;
  const int64_t until = now + options_.lease_ms;
  // 1. Commit what finished. A lost claim (its lease expired and another claim ran the line) is
  // dropped: the other claim's result is the line's one result.
  std::deque<LineOutcome> done;
  std::vector<std::string> tokens;
  {
    std::lock_guard<std::mutex> lk(mu_);
    done.swap(done_);
    for (const auto& o : done) in_flight_.erase(o.token);
    for (const auto& [t, b] : in_flight_) tokens.push_back(t);
    for (const ReadyLine& r : ready_) tokens.push_back(r.line.token);
  }
  // One transaction for what finished since the last step. If the database fails, the leases
  // run out and the lines run again.
  std::vector<const LineOutcome*> kept_lines;
  Status recorded = db_->in_transaction([&]() -> Status {
    kept_lines.clear();
    for (const auto& o : done) {
      if (!o.response_id.empty()) {
        KILN_RETURN_IF_ERROR(commit_response(o));
        continue;
      }
      if (o.retry) {
        KILN_RETURN_IF_ERROR(db_->release_line(o.batch_id, o.line, o.token));
        continue;
      }
      KILN_ASSIGN_OR_RETURN(bool kept, db_->commit_line(o.batch_id, o.line, o.token, o.is_error, o.result));
      if (!kept) log_warn("batches: the claim on ", o.batch_id, " line ", o.line, " was lost; its result is dropped");
      if (kept) kept_lines.push_back(&o);
    }
    return Status();
  });
  if (!done.empty() && !recorded.is_ok()) log_error("batches: cannot record ", done.size(), " line(s): ", recorded.message());
  // Which node ran which lines, for operators (and the several-node tests): the results this
  // node committed, by model and by the file they went to.
  if (recorded.is_ok() && options_.registry != nullptr) {
    for (const LineOutcome* o : kept_lines) {
      options_.registry
          ->counter("kiln_batch_lines_total",
                    "Batch lines this node ran and committed, by model and result (completed: output file, failed: "
                    "error file).",
                    {{"model", o->model}, {"result", o->is_error ? "failed" : "completed"}})
          .inc();
    }
  }
  // 2. Keep the leases of lines still running.
  if (!tokens.empty() && now - last_renew_ms_ >= options_.lease_ms / 3) {
    Status s = db_->renew_leases(tokens, until);
    if (s.is_ok()) s = db_->renew_response_leases(tokens, until);
    if (!s.is_ok()) log_error("batches: cannot renew leases: ", s.message());
    last_renew_ms_ = now;
  }
  if (maintain) maintain_batches(now);
  // 3a. Background responses take free slots first (a client waits on each; a batch has a 24 h
  // window). They are not claimed ahead: one waiting in a node's queue could run on another now.
  int free_for_responses = 0;
  {
    std::lock_guard<std::mutex> lk(mu_);
    free_for_responses = options_.concurrency - static_cast<int>(in_flight_.size());
  }
  if (free_for_responses > 0) {
    auto responses = db_->claim_responses(node, serving_models(), free_for_responses, now, until);
    if (!responses.is_ok()) log_error("responses: cannot claim background responses: ", responses.status().message());
    if (responses.is_ok()) {
      for (const auto& r : *responses) dispatch_response(r);  // each takes its slot in in_flight_
    }
  }
  // 3. Fill the free slots from the lines claimed ahead, then claim for the slots still free and,
  // once half of the lines ahead are used, enough to have `concurrency` ahead again: a slot that
  // frees up is refilled at once by line_done, and claims come in groups rather than one per line.
  const int conc = options_.concurrency;
  std::vector<ReadyLine> start_now;
  int to_claim = 0;
  {
    std::lock_guard<std::mutex> lk(mu_);
    int free_slots = conc - static_cast<int>(in_flight_.size());
    while (free_slots > 0 && !ready_.empty()) {
      start_now.push_back(std::move(ready_.front()));
      ready_.pop_front();
      --free_slots;
    }
    const int ahead = static_cast<int>(ready_.size());
    to_claim = std::max(free_slots, 0) + (ahead * 2 <= conc ? conc - ahead : 0);
  }
  for (const ReadyLine& r : start_now) dispatch(r);
  if (to_claim <= 0) return;
  auto claimed = claim_lines(to_claim, now, until);
  if (!claimed.is_ok()) {
    log_error("batches: cannot claim lines: ", claimed.status().message());
    return;
  }
  std::map<std::string, jobs::BatchRecord> batches;
  std::vector<ReadyLine> lines;
  for (const auto& l : *claimed) {
    auto it = batches.find(l.batch_id);
    if (it == batches.end()) {
      auto b = db_->get_batch(l.batch_id);
      if (!b.is_ok() || !*b) continue;  // its lease runs out and it is claimed again
      it = batches.emplace(l.batch_id, std::move(**b)).first;
    }
    lines.push_back(ReadyLine{l, it->second.endpoint, it->second.input_file_id, it->second.model});
  }
  size_t first_ahead = 0;
  {
    std::lock_guard<std::mutex> lk(mu_);
    const int free_slots = conc - static_cast<int>(in_flight_.size());
    first_ahead = std::min(lines.size(), static_cast<size_t>(std::max(free_slots, 0)));
    for (size_t i = first_ahead; i < lines.size(); ++i) ready_.push_back(std::move(lines[i]));
  }
  for (size_t i = 0; i < first_ahead; ++i) dispatch(lines[i]);
}

void BatchService::maintain_batches(int64_t now) {
  const std::string& node = options_.node;
  const int64_t until = now + options_.lease_ms;
  // Validate new batches, end finished, expired and cancelled ones (each under a batch lease).
  auto lease = [&](const char* status, std::string extra) {
    auto b = db_->lease_batch(status, extra, node, now, until);
    if (!b.is_ok()) log_error("batches: ", b.status().message());
    return b.is_ok() ? *b : std::nullopt;
  };
  if (auto b = lease("validating", "")) validate(*b);
  auto expired = db_->lease_expired_batch(node, now, until);
  if (!expired.is_ok()) log_error("batches: ", expired.status().message());
  if (expired.is_ok() && *expired) finalize(**expired, "in_progress", "expired");
  if (auto b = lease("in_progress", "NOT EXISTS (SELECT 1 FROM batch_lines l WHERE l.batch_id = batches.id AND "
                                    "l.status <> 'done')")) {
    if (db_->mark_finalizing(b->id, now).is_ok()) {
      b->finalizing_ms = now;
      finalize(*b, "finalizing", "completed");
    }
  }
  if (auto b = lease("finalizing", "")) finalize(*b, "finalizing", "completed");
  prune_files(now);
  prune_ended(now);
  if (auto b = lease("cancelling", "")) {
    auto counts = db_->line_counts(b->id, now);
    if (counts.is_ok() && counts->running == 0) finalize(*b, "cancelling", "cancelled");
    else (void)db_->release_batch(b->id, node);
  }
}

void BatchService::prune_files(int64_t now) {
  auto pruned = db_->prune_expired_files(now, kPruneBatch);
  if (!pruned.is_ok()) return log_error("batches: cannot prune expired files: ", pruned.status().message());
  // Record first, contents second (as a delete): a kill in between leaves unreferenced contents.
  for (const auto& id : *pruned) {
    std::error_code ec;
    std::filesystem::remove(file_path(id), ec);
  }
  if (!pruned->empty()) log_info("batches: ", pruned->size(), " expired file(s) deleted");
}

void BatchService::prune_ended(int64_t now) {
  if (options_.retention_ms <= 0) return;
  if (!retention_backlog_ && now - last_retention_ms_ < std::min(kRetentionEveryMs, options_.retention_ms)) return;
  last_retention_ms_ = now;
  retention_backlog_ = false;
  auto p = db_->prune_ended(now - options_.retention_ms, kRetentionBatch);
  if (!p.is_ok()) return log_error("batches: retention pass failed: ", p.status().message());
  retention_backlog_ = p->lines >= kRetentionBatch || static_cast<int>(p->batches.size()) >= kRetentionBatch ||
                       p->deliveries >= kRetentionBatch;
  if (options_.registry != nullptr) {
    options_.registry->counter("kiln_batches_pruned_total", "Ended batches deleted by the retention (--batch-retention).")
        .inc(static_cast<double>(p->batches.size()));
    options_.registry
        ->counter("kiln_webhook_deliveries_pruned_total",
                  "Finished webhook deliveries deleted by the retention (--batch-retention).")
        .inc(static_cast<double>(p->deliveries));
  }
  if (!p->batches.empty() || p->deliveries > 0) {
    log_info("batches: retention deleted ", p->batches.size(), " batch(es), ", p->lines, " line(s), ", p->deliveries,
             " webhook deliveries");
  }
}

void BatchService::validate(const jobs::BatchRecord& b) {
  ValidatedInput in = validate_batch_input(file_path(b.input_file_id), b.endpoint, options_.max_file_lines,
                                           options_.max_line_bytes);
  const int64_t now = now_ms();
  Status s;
  if (in.errors.empty()) {
    s = db_->finish_validation(b.id, in.model, in.lines, now);
  } else {
    // A failed batch has no files; its event is queued with its status, like the others'.
    jobs::BatchRecord f = b;
    f.status = "failed";
    f.failed_ms = now;
    f.errors = in.errors.dump();
    s = db_->complete_batch(f, "validating", {}, webhooks_->events_for(f, "batch.failed", now)).status();
    webhooks_->wake();
  }
  if (!s.is_ok()) {
    log_error("batches: cannot record the validation of ", b.id, ": ", s.message());
    (void)db_->release_batch(b.id, options_.node);
    return;
  }
  log_info("batches: ", b.id, in.errors.empty() ? str_cat(" validated: ", in.lines.size(), " requests")
                                                  : str_cat(" failed validation (", in.errors.size(), " errors)"));
}

void BatchService::finalize(const jobs::BatchRecord& b, const std::string& from, const std::string& status) {
  const int64_t now = now_ms();
  struct Out {
    jobs::FileRecord rec;
    std::ofstream file;
    std::filesystem::path part;
  };
  Out outs[2];
  const char* names[2] = {"output", "errors"};
  for (int i = 0; i < 2; ++i) {
    outs[i].rec = jobs::FileRecord{new_object_id("file-"), "batch_output", str_cat(b.id, "_", names[i], ".jsonl"), b.client,
                                   0, 0, now, b.output_expires_s > 0 ? now + b.output_expires_s * 1000 : 0};
    outs[i].part = options_.files_dir / (outs[i].rec.id + ".part");
    outs[i].file.open(outs[i].part, std::ios::binary | std::ios::trunc);
  }
  auto cleanup = [&] {
    std::error_code ec;
    for (auto& o : outs) {
      o.file.close();
      std::filesystem::remove(o.part, ec);
      std::filesystem::remove(options_.files_dir / o.rec.id, ec);
    }
  };
  jobs::BatchRecord f = b;
  f.status = status;
  f.total = f.completed = f.failed = 0;
  int64_t after = 0;
  while (true) {
    auto rows = db_->line_results(b.id, after, kPage);
    if (!rows.is_ok()) {
      log_error("batches: cannot read the results of ", b.id, ": ", rows.status().message());
      cleanup();
      (void)db_->release_batch(b.id, options_.node);
      return;
    }
    for (const auto& r : *rows) {
      ++f.total;
      after = r.line;
      const FinalLine line = final_line(r, status);
      if (line.where == FinalLine::kNone) continue;
      ++(line.where == FinalLine::kOutput ? f.completed : f.failed);
      Out& o = outs[line.where];
      o.file << line.text << '\n';
      o.rec.bytes += static_cast<int64_t>(line.text.size() + 1);
      ++o.rec.lines;
    }
    if (static_cast<int>(rows->size()) < kPage) break;
  }
  std::vector<jobs::FileRecord> files;
  for (int i = 0; i < 2; ++i) {
    outs[i].file.flush();
    const bool ok = outs[i].file.good();
    outs[i].file.close();
    if (!ok) {
      log_error("batches: cannot write the ", names[i], " file of ", b.id);
      cleanup();
      (void)db_->release_batch(b.id, options_.node);
      return;
    }
    std::error_code ec;
    if (outs[i].rec.lines == 0) {
      std::filesystem::remove(outs[i].part, ec);
      continue;
    }
    std::filesystem::rename(outs[i].part, options_.files_dir / outs[i].rec.id, ec);
    files.push_back(outs[i].rec);
    (i == 0 ? f.output_file_id : f.error_file_id) = outs[i].rec.id;
  }
  if (status == "completed") f.completed_ms = now;
  if (status == "expired") f.expired_ms = now;
  if (status == "cancelled") f.cancelled_ms = now;
  if (f.finalizing_ms == 0 && status != "cancelled") f.finalizing_ms = now;
  auto ended = db_->complete_batch(f, from, files, webhooks_->events_for(f, str_cat("batch.", status), now));
  if (!ended.is_ok() || !*ended) {
    if (!ended.is_ok()) log_error("batches: cannot end ", b.id, ": ", ended.status().message());
    cleanup();
    (void)db_->release_batch(b.id, options_.node);
    return;
  }
  log_info("batches: ", b.id, " ", status, ": ", f.completed, " completed, ", f.failed, " failed of ", f.total);
  webhooks_->wake();
}

void BatchService::dispatch(const ReadyLine& r) {
  const jobs::ClaimedLine& l = r.line;
  const std::string& endpoint = r.endpoint;
  const std::string& input_file = r.input_file;
  {
    std::lock_guard<std::mutex> lk(mu_);
    in_flight_[l.token] = l.batch_id;
  }
  LineOutcome base{l.batch_id, l.token, r.model, l.line, false, false, "", "", ""};
  auto body = read_line_body(file_path(input_file), l.body_offset, l.body_length);
  if (!body.is_ok()) {
    // The input is gone or damaged: the line fails with a server error in the error file.
    ApiError e = error_with_status(500, body.status().message());
    base.is_error = true;
    base.result = response_line(l.custom_id, 500, new_object_id("req_"), error_body(e));
    return line_done(std::move(base));
  }
  HttpRequest req;
  req.method = "POST";
  req.target = req.path = endpoint;
  req.headers.emplace_back("content-type", "application/json");
  req.body = std::move(body).value();
  req.remote = "batch:" + l.batch_id;
  req.priority = options_.priority;
  const std::string custom_id = l.custom_id;
  App* app = &app_;
  auto sink = std::make_shared<LineSink>(io_->ioc, [this, app, base, custom_id](const AccessRecord& rec, int status,
                                                                                 std::string out) mutable {
    app->on_done(rec);
    base.retry = retryable(status);
    base.is_error = status >= 400;
    base.result = response_line(custom_id, status, rec.request_id, out);
    line_done(std::move(base));
  });
  auto ex = std::make_shared<Exchange>(sink, std::move(req));
  sink->post([app, ex] { app->handle_internal(ex); });
}

}  // namespace kiln::http

namespace kiln::http {

namespace {

// A background response's final object from its run's answer: the rendered response (completed
// or incomplete), or the stored one marked failed with the error (OpenAI's ResponseError codes).
std::pair<std::string, std::string> response_result(const jobs::ResponseRecord& r, int status, const std::string& body) {
  Json out = Json::parse(body, nullptr, false);
  if (status == 200 && out.is_object() && out.contains("status")) {
    out["created_at"] = r.created_ms / 1000;  // when it was created, not when it ran
    return {out["status"].get<std::string>(), out.dump(-1, ' ', false, Json::error_handler_t::replace)};
  }
  Json failed = Json::parse(r.response, nullptr, false);
  if (!failed.is_object()) failed = Json::object();
  std::string message = "The response failed.";
  if (out.is_object() && out.contains("error") && out["error"].is_object()) {
    message = out["error"].value("message", message);
  }
  failed["status"] = "failed";
  failed["error"] = {{"code", status == 429 ? "rate_limit_exceeded" : status >= 500 ? "server_error" : "invalid_prompt"},
                     {"message", message}};
  return {"failed", failed.dump(-1, ' ', false, Json::error_handler_t::replace)};
}

}  // namespace

void BatchService::dispatch_response(const jobs::ResponseRecord& r) {
  {
    std::lock_guard<std::mutex> lk(mu_);
    in_flight_[r.token] = r.id;
  }
  HttpRequest req;
  req.method = "POST";
  req.target = req.path = "/v1/responses";
  req.headers.emplace_back("content-type", "application/json");
  // The job record of the run is the response's: DELETE /v1/jobs/{id} and a cancel reach it.
  req.headers.emplace_back("x-request-id", r.id);
  req.body = r.request;
  req.remote = "background:" + r.id;
  req.response_id = r.id;
  App* app = &app_;
  LineOutcome base;
  base.token = r.token;
  base.response_id = r.id;
  auto sink = std::make_shared<LineSink>(io_->ioc, [this, app, base, r](const AccessRecord& rec, int status,
                                                                        std::string out) mutable {
    app->on_done(rec);
    base.retry = retryable(status);
    std::tie(base.response_status, base.result) = response_result(r, status, out);
    line_done(std::move(base));
  });
  auto ex = std::make_shared<Exchange>(sink, std::move(req));
  ex->record().client = r.client;
  sink->post([app, ex] { app->handle_internal(ex); });
}

Status BatchService::commit_response(const LineOutcome& o) {
  if (o.retry) return db_->release_response(o.response_id, o.token);
  const int64_t now = now_ms();
  // A response cancelled or deleted while it ran is not brought back: finish_response changes
  // nothing once it is no longer in progress under this claim.
  KILN_ASSIGN_OR_RETURN(bool kept, db_->finish_response(o.response_id, o.token, o.response_status, o.result, now,
                                                        webhooks_->events_for(o.response_id,
                                                                              "response." + o.response_status, now)));
  if (kept) webhooks_->wake();
  return Status();
}

}  // namespace kiln::http
