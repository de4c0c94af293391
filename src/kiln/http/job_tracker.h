// The HTTP side of job tracking: turns each generation request into job snapshots for the
// recorder (queued when submitted, running at its first token, finished when answered) and keeps
// the requests in flight so that DELETE /v1/jobs/{id} can cancel one (docs/jobs.md).
//
// Threading: begin() and the ActiveJob calls run on the request's strand; on_done() runs where the
// server reports a finished exchange; cancel() on another request's strand. The in-flight map and
// each ActiveJob take their own small lock; nothing here waits on the database.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>

#include "kiln/http/access_log.h"
#include "kiln/http/exchange.h"
#include "kiln/jobs/query_runner.h"
#include "kiln/jobs/recorder.h"
#include "kiln/serve/request.h"

namespace kiln::http {

struct JobTrackerOptions {
  std::string node;           // this process's node name (jobs it leaves open are failed at its restart)
  bool store_bodies = false;  // --store-bodies: keep request and (non-streamed) response bodies
  bool api_keys = false;      // API keys are configured: the client is the key's id, else its address
};

// One request in flight.
class ActiveJob {
 public:
  ActiveJob(jobs::Job job, std::chrono::steady_clock::time_point received, std::function<void()> cancel);
  // The first token arrived: the job is running.
  void first_token();
  // The engine's own timing of the request, once it is done (exact started / first token times).
  void set_timing(const serve::RequestTiming& t);
  void set_response_body(const std::string& body);
  // Its bodies are kept (--store-bodies, or the model's store_bodies setting).
  bool stores_bodies() const { return store_bodies_; }
  // Asks the request to stop (posts to its strand); true the first time.
  bool request_cancel();
  bool cancel_requested() const;
  jobs::Job snapshot() const;

 private:
  friend class JobTracker;
  int64_t wall_ms(std::chrono::steady_clock::time_point t) const;

  mutable std::mutex mu_;
  jobs::Job job_;
  const std::chrono::steady_clock::time_point received_;
  std::function<void()> cancel_;
  bool cancel_requested_ = false;
  bool store_bodies_ = false;
  jobs::JobRecorder* recorder_ = nullptr;
};

class JobTracker {
 public:
  JobTracker(jobs::JobRecorder& recorder, jobs::JobQueries& queries, JobTrackerOptions options);

  jobs::JobQueries& queries() { return queries_; }
  jobs::JobRecorder& recorder() { return recorder_; }
  const JobTrackerOptions& options() const { return options_; }

  // A generation request was submitted to `model`'s worker: records it as queued and keeps it
  // cancellable. `cancel` runs on any thread and must post to the request's strand.
  // `store_bodies`: the model's own setting, over --store-bodies when set.
  std::shared_ptr<ActiveJob> begin(const ExchangePtr& ex, const std::string& model, bool stream,
                                   std::optional<bool> store_bodies, std::function<void()> cancel);
  // Every finished exchange: records the final state of a job route's request (one that never
  // reached begin(), refused before it ran, is recorded too; one refused for its API key is not).
  void on_done(const AccessRecord& r);
  // The job in flight here with this id, asked to cancel; nullopt when none runs here.
  std::optional<jobs::Job> cancel(const std::string& id);
  // Asks every request of `model` in flight here to cancel (an unload with force=true); how many.
  int64_t cancel_model(const std::string& model);

  // The id a client is recorded under: "key_" + the first 12 hex digits of the key's SHA-1 (never
  // the key), or the client's address when no API keys are configured.
  std::string client_of(const HttpRequest& request) const;

 private:
  jobs::JobRecorder& recorder_;
  jobs::JobQueries& queries_;
  JobTrackerOptions options_;
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<ActiveJob>> active_;
};

// The routes whose requests are jobs.
bool is_job_route(std::string_view route);

}  // namespace kiln::http
