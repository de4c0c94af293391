#include "kiln/http/job_tracker.h"

#include <vector>

#include "kiln/core/str.h"
#include "kiln/http/auth.h"

namespace kiln::http {

namespace {

// Text a client chose (a model name, an error quoting it) is kept up to this size in a job.
constexpr size_t kMaxFieldBytes = 256;
constexpr size_t kMaxErrorBytes = 1024;

int64_t now_ms() { return jobs::system_now_ms(); }

// Databases want valid UTF-8 without NUL bytes (PostgreSQL refuses both): anything else becomes
// '?', and long values are cut.
std::string clean(std::string_view s, size_t max_bytes) {
  std::string out(s.substr(0, max_bytes));
  if (out.find('\0') == std::string::npos && is_valid_utf8(out)) return out;
  for (char& c : out) {
    if (c == '\0' || static_cast<unsigned char>(c) >= 0x80) c = '?';
  }
  return out;
}

// The job's error code from the HTTP status it was answered with.
std::string error_code_for(int status) {
  switch (status) {
    case 400: return "invalid_request";
    case 404: return "not_found";
    case 408: case 504: return "timeout";
    case 409: return "cancelled";
    case 413: return "too_large";
    case 429: return "rate_limited";
    case kClientClosedStatus: return "client_closed";
    case 503: return "unavailable";
    default: return status >= 500 ? "server_error" : "error";
  }
}

void finish_job(jobs::Job& j, const AccessRecord& r, bool cancel_requested) {
  j.model = clean(r.model, kMaxFieldBytes);
  j.stream = r.stream;
  j.http_status = r.status;
  if (r.prompt_tokens >= 0) j.prompt_tokens = r.prompt_tokens;
  if (r.completion_tokens >= 0) j.completion_tokens = r.completion_tokens;
  j.finish_reason = clean(r.finish_reason, kMaxFieldBytes);
  if (j.finished_ms == 0) j.finished_ms = std::max(j.received_ms, now_ms());
  const bool failed = r.status >= 400 || !r.error.empty();
  if (!failed) {
    j.status = jobs::JobStatus::kCompleted;
    return;
  }
  j.error_message = clean(r.error, kMaxErrorBytes);
  if (cancel_requested) {
    j.status = jobs::JobStatus::kCancelled;
    j.error_code = "cancelled";
  } else if (r.status == kClientClosedStatus) {
    j.status = jobs::JobStatus::kCancelled;
    j.error_code = "client_closed";
  } else {
    j.status = jobs::JobStatus::kFailed;
    j.error_code = error_code_for(r.status >= 400 ? r.status : 500);
  }
}

}  // namespace

bool is_job_route(std::string_view route) {
  return route == "/v1/chat/completions" || route == "/v1/completions" || route == "/v1/responses" ||
         route == "/v1/messages" || route == "/v1/embeddings" || route == "/v1/rerank" || route == "/v1/score";
}

ActiveJob::ActiveJob(jobs::Job job, std::chrono::steady_clock::time_point received, std::function<void()> cancel)
    : job_(std::move(job)), received_(received), cancel_(std::move(cancel)) {}

int64_t ActiveJob::wall_ms(std::chrono::steady_clock::time_point t) const {
  if (t.time_since_epoch().count() == 0) return 0;
  return job_.received_ms + std::chrono::duration_cast<std::chrono::milliseconds>(t - received_).count();
}

void ActiveJob::first_token() {
  std::lock_guard<std::mutex> lk(mu_);
  if (job_.status != jobs::JobStatus::kQueued) return;
  job_.status = jobs::JobStatus::kRunning;
  job_.first_token_ms = wall_ms(std::chrono::steady_clock::now());
  if (job_.started_ms == 0) job_.started_ms = job_.first_token_ms;
  if (recorder_ != nullptr) recorder_->record(job_);
}

void ActiveJob::set_timing(const serve::RequestTiming& t) {
  std::lock_guard<std::mutex> lk(mu_);
  if (int64_t s = wall_ms(t.first_scheduled); s > 0) job_.started_ms = s;
  if (int64_t f = wall_ms(t.first_token); f > 0) job_.first_token_ms = f;
  if (int64_t e = wall_ms(t.finished); e > 0) job_.finished_ms = e;
}

void ActiveJob::set_response_body(const std::string& body) {
  std::lock_guard<std::mutex> lk(mu_);
  job_.response_body = body;
}

bool ActiveJob::request_cancel() {
  std::function<void()> fn;
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (cancel_requested_ || jobs::is_terminal(job_.status)) return false;
    cancel_requested_ = true;
    fn = cancel_;
  }
  if (fn) fn();
  return true;
}

bool ActiveJob::cancel_requested() const {
  std::lock_guard<std::mutex> lk(mu_);
  return cancel_requested_;
}

jobs::Job ActiveJob::snapshot() const {
  std::lock_guard<std::mutex> lk(mu_);
  return job_;
}

JobTracker::JobTracker(jobs::JobRecorder& recorder, jobs::JobQueries& queries, JobTrackerOptions options)
    : recorder_(recorder), queries_(queries), options_(std::move(options)) {}

std::string JobTracker::client_of(const HttpRequest& request) const {
  return clean(client_id(request, options_.api_keys), kMaxFieldBytes);
}

std::shared_ptr<ActiveJob> JobTracker::begin(const ExchangePtr& ex, const std::string& model, bool stream,
                                             std::optional<bool> store_bodies, std::function<void()> cancel) {
  const bool bodies = store_bodies.value_or(options_.store_bodies);
  jobs::Job j;
  j.id = clean(ex->request_id(), kMaxFieldBytes);
  j.node = options_.node;
  j.model = clean(model, kMaxFieldBytes);
  j.endpoint = ex->record().route;
  j.client = ex->record().client;
  j.stream = stream;
  const auto received = ex->start_time();
  j.received_ms = now_ms() - std::chrono::duration_cast<std::chrono::milliseconds>(
                                 std::chrono::steady_clock::now() - received).count();
  if (bodies) j.request_body = clean(ex->request().body, std::string::npos);
  auto job = std::make_shared<ActiveJob>(std::move(j), received, std::move(cancel));
  job->store_bodies_ = bodies;
  job->recorder_ = &recorder_;
  recorder_.record(job->snapshot());
  {
    std::lock_guard<std::mutex> lk(mu_);
    active_.emplace(job->snapshot().id, job);  // a request id already in flight keeps its first job
  }
  ex->record().job = job;
  return job;
}

void JobTracker::on_done(const AccessRecord& r) {
  if (r.job) {
    const auto& active = r.job;
    jobs::Job j;
    {
      std::lock_guard<std::mutex> lk(active->mu_);
      finish_job(active->job_, r, active->cancel_requested_);
      if (!active->store_bodies_) active->job_.response_body.clear();
      j = active->job_;
    }
    recorder_.record(std::move(j));
    std::lock_guard<std::mutex> lk(mu_);
    auto it = active_.find(r.job->job_.id);
    if (it != active_.end() && it->second == r.job) active_.erase(it);
    return;
  }
  // Refused before it ran (a bad request, a model that does not exist, a full queue). A request
  // without a valid key is not a job: nobody could be named as its client.
  if (!is_job_route(r.route) || r.status == 401) return;
  jobs::Job j;
  j.id = clean(r.request_id, kMaxFieldBytes);
  j.node = options_.node;
  j.endpoint = r.route;
  j.client = r.client;
  const int64_t now = now_ms();
  j.received_ms = now - static_cast<int64_t>(r.duration_seconds * 1000.0);
  j.finished_ms = now;
  finish_job(j, r, false);
  recorder_.record(std::move(j));
}

std::optional<jobs::Job> JobTracker::cancel(const std::string& id) {
  std::shared_ptr<ActiveJob> job;
  {
    std::lock_guard<std::mutex> lk(mu_);
    auto it = active_.find(id);
    if (it == active_.end()) return std::nullopt;
    job = it->second;
  }
  job->request_cancel();
  return job->snapshot();
}

int64_t JobTracker::cancel_model(const std::string& model) {
  std::vector<std::shared_ptr<ActiveJob>> jobs;
  {
    std::lock_guard<std::mutex> lk(mu_);
    for (const auto& [id, job] : active_) {
      if (job->snapshot().model == model) jobs.push_back(job);
    }
  }
  int64_t n = 0;
  for (const auto& job : jobs) n += job->request_cancel() ? 1 : 0;
  return n;
}

}  // namespace kiln::http
