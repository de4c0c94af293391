#include "kiln/http/pull_service.h"

#include <atomic>
#include <chrono>

#include "kiln/core/log.h"
#include "kiln/core/str.h"
#include "kiln/hub/progress.h"
#include "kiln/http/errors.h"
#include "kiln/http/json_fields.h"
#include "kiln/http/sse.h"

namespace kiln::http {

namespace {
std::string dump(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }
}  // namespace

// One running pull: its thread, what it has said so far (replayed to a listener that joins), and
// its listeners.
struct PullService::Job : hub::PullObserver {
  hub::RepoRef ref;
  std::thread thread;
  std::atomic<bool> cancel{false};
  std::mutex mu;  // below: events and listeners
  std::string resolved_event, progress_event;
  std::vector<std::string> file_events;
  // A listener leaves by clearing its flag, never by taking `mu`: it may leave from inside its
  // own call (the exchange it feeds can end there).
  struct Slot {
    Listener fn;
    std::atomic<bool> active{true};
  };
  std::vector<std::shared_ptr<Slot>> listeners;
  bool ended = false;
  std::string commit;
  hub::PullProgress latest;
  hub::RateMeter meter;
  std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();

  void emit(const std::string& event, bool last) {
    std::erase_if(listeners, [](const auto& s) { return !s->active.load(); });
    for (const auto& s : listeners) {
      if (s->active.load()) s->fn(event, last);
    }
  }

  void resolved(const hub::PullPlan& p) override {
    Json files = Json::array();
    for (const auto& f : p.files) files.push_back({{"path", f.path}, {"size", f.size}});
    std::lock_guard<std::mutex> lock(mu);
    commit = p.commit;
    latest.total_bytes = p.total_bytes;
    latest.done_bytes = p.present_bytes;
    latest.files_total = static_cast<int>(p.files.size());
    resolved_event = sse_event("resolved", dump({{"model", p.repo},
                                                 {"revision", p.revision},
                                                 {"commit", p.commit},
                                                 {"files", files},
                                                 {"total_bytes", p.total_bytes},
                                                 {"present_bytes", p.present_bytes}}));
    emit(resolved_event, false);
  }
  void progress(const hub::PullProgress& p) override {
    const double t = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    meter.add(t, p.done_bytes);
    std::lock_guard<std::mutex> lock(mu);
    latest = p;
    progress_event = sse_event("progress", dump({{"model", ref.repo},
                                                 {"done_bytes", p.done_bytes},
                                                 {"total_bytes", p.total_bytes},
                                                 {"files_done", p.files_done},
                                                 {"files_total", p.files_total},
                                                 {"bytes_per_second", std::llround(meter.bytes_per_second())}}));
    emit(progress_event, false);
  }
  void file_done(const hub::RepoFile& f, bool cached) override {
    std::lock_guard<std::mutex> lock(mu);
    file_events.push_back(
        sse_event("file", dump({{"model", ref.repo}, {"path", f.path}, {"size", f.size}, {"cached", cached}})));
    emit(file_events.back(), false);
  }
  void retrying(const hub::RepoFile& f, int attempt, const Status& why) override {
    std::lock_guard<std::mutex> lock(mu);
    emit(sse_event("retry", dump({{"model", ref.repo}, {"path", f.path}, {"attempt", attempt}, {"message", why.message()}})),
         false);
  }
  void finish(const std::string& event) {
    std::lock_guard<std::mutex> lock(mu);
    ended = true;
    emit(event, true);
    listeners.clear();
  }
};

PullService::PullService(PullServiceOptions options, std::function<bool(const std::string&)> publish)
    : options_(std::move(options)), publish_(std::move(publish)) {}

PullService::~PullService() {
  std::vector<std::shared_ptr<Job>> jobs;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    for (auto& [repo, job] : running_) {
      job->cancel = true;
      jobs.push_back(job);
    }
    for (auto& job : ended_) jobs.push_back(job);
    ended_.clear();
  }
  for (auto& job : jobs) {
    if (job->thread.joinable()) job->thread.join();
  }
}

void PullService::reap_locked() {
  std::erase_if(ended_, [](const std::shared_ptr<Job>& job) {
    if (job->thread.joinable()) job->thread.join();  // it has ended: this returns at once
    return true;
  });
}

Result<std::shared_ptr<void>> PullService::subscribe(const hub::RepoRef& ref, Listener listener) {
  std::lock_guard<std::mutex> lock(mu_);
  if (stopping_) return unavailable("the server is shutting down");
  reap_locked();
  std::shared_ptr<Job> job;
  if (auto it = running_.find(ref.repo); it != running_.end()) {
    job = it->second;
    if (job->ref.revision != ref.revision) {
      return failed_precondition(str_cat(ref.repo, "@", job->ref.revision,
                                         " is being pulled; pull another revision once it is done"));
    }
  } else {
    if (static_cast<int>(running_.size()) >= options_.max_running) {
      return resource_exhausted(str_cat(running_.size(), " pulls are running; try again once one is done"));
    }
    job = std::make_shared<Job>();
    job->ref = ref;
    running_[ref.repo] = job;
  }
  auto slot = std::make_shared<Job::Slot>();
  slot->fn = std::move(listener);
  {
    std::lock_guard<std::mutex> jl(job->mu);
    if (!job->resolved_event.empty()) slot->fn(job->resolved_event, false);
    for (const auto& e : job->file_events) slot->fn(e, false);
    if (!job->progress_event.empty()) slot->fn(job->progress_event, false);
    job->listeners.push_back(slot);
  }
  if (!job->thread.joinable()) job->thread = std::thread([this, job] { run(job); });
  return std::shared_ptr<void>(nullptr, [slot](void*) { slot->active = false; });
}

std::vector<PullService::Running> PullService::running() const {
  std::vector<Running> out;
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [repo, job] : running_) {
    std::lock_guard<std::mutex> jl(job->mu);
    out.push_back({job->ref, job->commit, job->latest});
  }
  return out;
}

void PullService::run(const std::shared_ptr<Job>& job) {
  hub::PullOptions o = options_.pull;
  o.cancelled = [job] { return job->cancel.load(std::memory_order_relaxed); };
  log_info("pull: ", job->ref.repo, "@", job->ref.revision, " from ", o.endpoint, " into ", o.hub_dir.string());
  auto r = hub::pull(job->ref, o, job.get());
  std::string last;
  if (r.is_ok()) {
    const bool servable = publish_(job->ref.repo);
    log_info("pull: ", job->ref.repo, " is commit ", r->commit, " in ", r->snapshot.string(),
             servable ? "" : " (not servable: the registry does not scan the Hugging Face cache)");
    last = sse_event("done", dump({{"model", job->ref.repo},
                                   {"revision", job->ref.revision},
                                   {"commit", r->commit},
                                   {"snapshot", r->snapshot.string()},
                                   {"downloaded_bytes", r->downloaded_bytes},
                                   {"servable", servable}}));
  } else {
    log_warn("pull: ", job->ref.repo, "@", job->ref.revision, " failed: ", r.status().to_string());
    last = sse_event("error", error_body(api_error_from_status(r.status())));
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    running_.erase(job->ref.repo);
    if (!stopping_) ended_.push_back(job);
  }
  job->finish(last);
}

}  // namespace kiln::http
